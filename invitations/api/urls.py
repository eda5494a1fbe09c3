from csp.constants import SELF
from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import push_views, views

# Swagger UI draws its icons from data: URIs (set by its script): this page alone may show such
# images. Its script is files of this origin (the split view) and its inline style is a file too
# (templates/drf_spectacular/swagger_ui.html), so scripts and styles stay 'self' only.
swagger_page = csp_update({"img-src": [SELF, "data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema")
)

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("auth/tokens/", views.TokensView.as_view(), name="api-tokens"),
    path("ws/ticket/", views.WebSocketTicketView.as_view(), name="api-ws-ticket"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("blocks/", views.BlocksView.as_view(), name="api-blocks"),
    path("blocks/<str:username>/", views.BlockView.as_view(), name="api-block"),
    path("users/", views.UsersView.as_view(), name="api-users"),
    path("calls/", views.CallsView.as_view(), name="api-calls"),
    path("calls/<str:call_id>/", views.CallDetailView.as_view(), name="api-call"),
    path("calls/<str:call_id>/invite/", views.InviteView.as_view(), name="api-call-invite"),
    path("calls/<str:call_id>/cancel/", views.CancelView.as_view(), name="api-call-cancel"),
    path("calls/<str:call_id>/accept/", views.AcceptView.as_view(), name="api-call-accept"),
    path("calls/<str:call_id>/reject/", views.RejectView.as_view(), name="api-call-reject"),
    path("calls/<str:call_id>/ack/", views.AckView.as_view(), name="api-call-ack"),
    path("push/config/", push_views.PushConfigView.as_view(), name="api-push-config"),
    path("push/devices/", push_views.PushDevicesView.as_view(), name="api-push-devices"),
    path(
        "push/devices/<int:device_pk>/",
        push_views.PushDeviceView.as_view(),
        name="api-push-device",
    ),
    path("calls/<str:call_id>/quit/", views.QuitView.as_view(), name="api-call-quit"),
    path("calls/<str:call_id>/end/", views.EndView.as_view(), name="api-call-end"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script as a file: the CSP allows no inline script.
    path("docs/", swagger_page, name="api-docs"),
]
