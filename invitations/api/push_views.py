"""REST endpoints of API.md "Push": the push config and the caller's push devices.

Thin like ``views.py``: parse with ``validation``, call ``invitations.push.devices``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from invitations import validation
from invitations.push import devices, registry

from . import serializers as s
from .views import ERRORS, body, signed_in


class PushConfigView(APIView):
    @extend_schema(
        responses={200: s.PushConfigSerializer, **ERRORS},
        summary="The push providers this server sends through, and its VAPID public key",
    )
    def get(self, request: Request) -> Response:
        signed_in(request)
        key = registry.vapid_public_key()
        return Response(
            {
                "providers": list(registry.configured_providers()),
                "webpush": {"vapid_public_key": key} if key else None,
            }
        )


class PushDevicesView(APIView):
    @extend_schema(
        responses={200: s.PushDeviceSerializer(many=True), **ERRORS},
        summary="Your push devices",
    )
    def get(self, request: Request) -> Response:
        mine = devices.devices_of(signed_in(request))
        return Response([devices.push_device_snapshot(d) for d in mine])

    @extend_schema(
        request=s.PushDeviceRequest,
        responses={201: s.PushDeviceResponse, 200: s.PushDeviceResponse, **ERRORS},
        summary="Register this device for push (a token another user held moves to you)",
        description="201 for a new registration, 200 when the same one existed already. "
        "Registered with an API token, it is removed when that token is revoked.",
    )
    def post(self, request: Request) -> Response:
        me = signed_in(request)
        fields = validation.push_device_fields(body(request))
        if fields["provider"] not in registry.configured_providers():
            raise validation.validation_error(
                "provider", f"This server does not push through {fields['provider']}."
            )
        device, created = devices.register(
            user=me,
            auth_token_digest=request.auth
            if isinstance(request.auth, str) and request.auth
            else None,
            **fields,
        )
        return Response(
            {"device": devices.push_device_snapshot(device)}, status=201 if created else 200
        )


class PushDeviceView(APIView):
    @extend_schema(request=None, responses={204: None, **ERRORS}, summary="Remove a push device")
    def delete(self, request: Request, device_pk: int) -> Response:
        devices.remove(user=signed_in(request), device_pk=device_pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
