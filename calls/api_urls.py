from django.urls import path

from .api import IceServersView

urlpatterns = [path("ice-servers/", IceServersView.as_view(), name="api-ice-servers")]
