from django.contrib import admin
from django.urls import include, path, re_path

from invitations.api.errors import not_found_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/rtc/", include("calls.api_urls")),
    path("api/", include("invitations.api.urls")),
    # Anything else under /api/ answers 404 in the error envelope, not Django's HTML page.
    re_path(r"^api/", not_found_view),
    path("", include("calls.urls")),
]
