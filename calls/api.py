from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from invitations import selectors
from invitations.api.views import ERRORS, signed_in

from .ice import ice_servers_for


class IceServersView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("call_id", str, description="The call to relay media of.")],
        responses={
            200: inline_serializer(
                "IceServers", {"ice_servers": serializers.ListField(child=serializers.DictField())}
            ),
            **ERRORS,
        },
        summary="RTCIceServer list for RTCPeerConnection",
        description="TURN (credentials valid at most 30 minutes) only for participants of a call "
        "that has not ended: the call named by call_id, or any when none is named.",
    )
    def get(self, request: Request) -> Response:
        user = signed_in(request)
        with_turn = selectors.in_live_call(user, request.query_params.get("call_id"))
        servers = ice_servers_for(user.get_username(), with_turn=with_turn)
        return Response({"ice_servers": servers})
