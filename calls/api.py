from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from invitations.api.views import ERRORS

from .ice import ice_servers_for


class IceServersView(APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "IceServers", {"ice_servers": serializers.ListField(child=serializers.DictField())}
            ),
            **ERRORS,
        },
        summary="RTCIceServer list for RTCPeerConnection (TURN credentials are short-lived)",
    )
    def get(self, request: Request) -> Response:
        return Response({"ice_servers": ice_servers_for(request.user.get_username())})
