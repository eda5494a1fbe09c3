from django.contrib import admin
from django.urls import include, path, re_path

from callsite.health import healthz, readyz
from callsite.metrics_view import metrics_view
from invitations.api.errors import not_found_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/rtc/", include("calls.api_urls")),
    path("api/", include("invitations.api.urls")),
    # Anything else under /api/ answers 404 in the error envelope, not Django's HTML page.
    re_path(r"^api/", not_found_view),
    path("", include("calls.urls")),
]
