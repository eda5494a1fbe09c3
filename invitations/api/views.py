"""REST endpoints of API.md: parse, check access, call a service. No logic of their own.

Each view parses the raw body with ``validation`` (the checks the WebSocket edge shares) into a
service's typed keyword arguments: the fields first, in a fixed order, then the call id.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from invitations import selectors, services, validation
from invitations.errors import CallError

from . import serializers as s
from .throttles import InvitationThrottle, TokenThrottle

ERRORS = {code: s.ErrorSerializer for code in (400, 401, 403, 404, 409, 429)}


def body(request: Request) -> dict[str, Any]:
    return validation.request_body(request.data)


def signed_in(request: Request) -> User:
    """The authenticated user (the default permission, IsAuthenticated, let only them in)."""
    user = request.user
    if not isinstance(user, User):
        raise CallError("not_authenticated", "Authentication credentials were not provided.")
    return user


class TokenView(APIView):
    permission_classes = [AllowAny]

    def get_throttles(self) -> list[BaseThrottle]:
        return [TokenThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        request=s.TokenRequest,
        responses={200: s.TokenResponse, **ERRORS},
        auth=[],
        summary="Exchange a username and password for an API token",
    )
    def post(self, request: Request) -> Response:
        data = body(request)
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise CallError(
                "validation_error",
                "username and password are required.",
                {"username": ["Required."], "password": ["Required."]},
            )
        if not (validation.storable(username) and validation.storable(password)):
            # No account has such a name (PostgreSQL could not even look it up).
            raise CallError("not_authenticated", "Wrong username or password.")
        user = authenticate(request._request, username=username, password=password)
        if user is None or not user.is_active:
            raise CallError("not_authenticated", "Wrong username or password.")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    @extend_schema(request=None, responses={204: None, **ERRORS}, summary="Revoke your token")
    def delete(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            raise CallError("not_authenticated", "Authentication credentials were not provided.")
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()]


class MeView(APIView):
    @extend_schema(responses={200: s.UserSerializer, **ERRORS}, summary="Who am I")
    def get(self, request: Request) -> Response:
        return Response(selectors.user_snapshots([signed_in(request)])[0])


class UsersView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("search", str), OpenApiParameter("page", int)],
        responses={200: s.UserSerializer(many=True), **ERRORS},
        summary="Everyone but yourself, with presence",
    )
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            selectors.people(signed_in(request), request.query_params.get("search")),
            request,
            view=self,
        )
        return paginator.get_paginated_response(selectors.user_snapshots(page or []))


class CallsView(APIView):
    def get_throttles(self) -> list[BaseThrottle]:
        return [InvitationThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=["ringing", "ongoing", "ended"]),
            OpenApiParameter("missed", bool),
            OpenApiParameter("page", int),
        ],
        responses={200: s.CallSerializer(many=True), **ERRORS},
        summary="Your calls, newest first",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        qs = selectors.calls_for_user(
            signed_in(request), state=params.get("state"), missed=params.get("missed")
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(selectors.snapshots(page or []))

    @extend_schema(
        request=s.StartCallRequest,
        responses={201: s.CallWithErrorsSerializer, **ERRORS},
        summary="Start a call by inviting people",
    )
    def post(self, request: Request) -> Response:
        me = signed_in(request)
        fields = validation.start_call_fields(body(request), me=me.get_username())
        result = services.invite(inviter=me, **fields)
        return Response({"call": result.call, "errors": result.errors}, status=201)


class CallDetailView(APIView):
    @extend_schema(responses={200: s.CallSerializer, **ERRORS}, summary="One of your calls")
    def get(self, request: Request, call_id: str) -> Response:
        call = selectors.call_for_user(signed_in(request), validation.call_id(call_id))
        return Response(selectors.snapshots([call])[0])


class InviteView(APIView):
    def get_throttles(self) -> list[BaseThrottle]:
        return [InvitationThrottle()]

    @extend_schema(
        request=s.InviteRequest,
        responses={200: s.CallWithErrorsSerializer, **ERRORS},
        summary="Invite more people into the call",
    )
    def post(self, request: Request, call_id: str) -> Response:
        me = signed_in(request)
        fields = validation.invite_fields(body(request), me=me.get_username())
        result = services.add_invitees(actor=me, call_id=validation.call_id(call_id), **fields)
        return Response({"call": result.call, "errors": result.errors})


class CancelView(APIView):
    @extend_schema(
        request=s.CancelRequest,
        responses={200: s.CallOnlySerializer, **ERRORS},
        summary="Withdraw invitations you sent",
    )
    def post(self, request: Request, call_id: str) -> Response:
        me = signed_in(request)
        fields = validation.cancel_fields(body(request), me=me.get_username())
        call = services.cancel(actor=me, call_id=validation.call_id(call_id), **fields)
        return Response({"call": call})


class AcceptView(APIView):
    @extend_schema(
        request=s.AcceptRequest,
        responses={200: s.CallOnlySerializer, **ERRORS},
        summary="Accept an invitation",
    )
    def post(self, request: Request, call_id: str) -> Response:
        fields = validation.device_fields(body(request))
        call = services.accept(
            actor=signed_in(request), call_id=validation.call_id(call_id), **fields
        )
        return Response({"call": call})


class RejectView(APIView):
    @extend_schema(
        request=s.RejectRequest,
        responses={200: s.CallOnlySerializer, **ERRORS},
        summary="Decline an invitation",
    )
    def post(self, request: Request, call_id: str) -> Response:
        fields = validation.reject_fields(body(request))
        call = services.reject(
            actor=signed_in(request), call_id=validation.call_id(call_id), **fields
        )
        return Response({"call": call})


class QuitView(APIView):
    @extend_schema(
        request=s.ExtendedDataRequest,
        responses={200: s.CallOnlySerializer, **ERRORS},
        summary="Leave the call",
    )
    def post(self, request: Request, call_id: str) -> Response:
        fields = validation.device_fields(body(request))
        call = services.quit_call(
            actor=signed_in(request), call_id=validation.call_id(call_id), **fields
        )
        return Response({"call": call})


class EndView(APIView):
    @extend_schema(
        request=s.ExtendedDataRequest,
        responses={200: s.CallOnlySerializer, **ERRORS},
        summary="End the call for everyone",
    )
    def post(self, request: Request, call_id: str) -> Response:
        fields = validation.extended_data_fields(body(request))
        call = services.end(actor=signed_in(request), call_id=validation.call_id(call_id), **fields)
        return Response({"call": call})
