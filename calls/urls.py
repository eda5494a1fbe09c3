from django.contrib.auth import views as auth_views
from django.contrib.staticfiles import views as static_views
from django.urls import path, re_path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("calls/new/", views.new_call, name="new-call"),
    path("calls/<uuid:call_id>/", views.call_page, name="call"),
    path("missed/seen/", views.mark_missed_seen, name="missed-seen"),
    path("profile/", views.profile, name="profile"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("csrf-token/", views.csrf_token_view, name="csrf-token"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The embedded server (one Daphne process) serves the app's own ES modules and CSS; behind a
    # reverse proxy, serve `collectstatic` output from STATIC_ROOT there instead.
    re_path(r"^static/(?P<path>.*)$", static_views.serve, {"insecure": True}),
]
