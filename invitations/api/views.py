"""REST endpoints of API.md: parse, check access, call a service. No logic of their own.

Each view parses the raw body with ``validation`` (the checks the WebSocket edge shares) into a
service's typed keyword arguments: the fields first, in a fixed order, then the call id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from invitations import selectors, services, tokens, validation
from invitations.errors import CallError
from invitations.services import blocks

from . import serializers as s
from .throttles import InvitationThrottle, PairThrottle, TokenThrottle

ERRORS = {code: s.ErrorSerializer for code in (400, 401, 403, 404, 409, 429)}


def body(request: Request) -> dict[str, Any]:
    return validation.request_body(request.data)


def _token_user(request: Request, data: dict[str, Any]) -> User:
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
    # With the request, so django-axes counts failures per account and address.
    user = authenticate(request._request, username=username, password=password)
    if not isinstance(user, User) or not user.is_active:
        raise CallError("not_authenticated", "Wrong username or password.")
    return user


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
        summary="Exchange a username and password for this device's API token",
        description="One token per device: a new one for the same device_id replaces the old. "
        "Tokens expire 30 days after their last use.",
    )
    def post(self, request: Request) -> Response:
        data = body(request)
        device_id = validation.device_id(data.get("device_id"))
        user = _token_user(request, data)
        token, expires_at = tokens.issue(user=user, device_id=device_id)
        return Response({"token": token, "expires_at": expires_at})

    @extend_schema(
        request=None, responses={204: None, **ERRORS}, summary="Revoke the token you present"
    )
    def delete(self, request: Request) -> Response:
        digest = request.auth if isinstance(request.auth, str) else ""
        if not request.user.is_authenticated or not digest:
            raise CallError("not_authenticated", "Present the token to revoke (Authorization).")
        tokens.revoke(digest=digest)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()]


class TokensView(APIView):
    @extend_schema(
        request=None, responses={204: None, **ERRORS}, summary="Revoke all of your tokens"
    )
    def delete(self, request: Request) -> Response:
        tokens.revoke_all(user=signed_in(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebSocketTicketView(APIView):
    @extend_schema(
        request=None,
        responses={200: s.TicketResponse, **ERRORS},
        summary="A single-use ticket for /ws/?ticket=, valid 30 s",
    )
    def post(self, request: Request) -> Response:
        digest = request.auth if isinstance(request.auth, str) and request.auth else None
        session = getattr(request, "session", None)
        ticket, expires_at = tokens.issue_ticket(
            user=signed_in(request),
            token_digest=digest,
            # A ticket a browser session asked for lives and dies with that session.
            session_key=session.session_key if digest is None and session is not None else None,
        )
        return Response({"ticket": ticket, "expires_at": expires_at})


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
        return [InvitationThrottle(), PairThrottle()] if self.request.method == "POST" else []

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
        return [InvitationThrottle(), PairThrottle()]

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


Fields = Callable[[dict[str, Any], str], Mapping[str, object]]


def body_only(parse: Callable[[dict[str, Any]], Mapping[str, object]]) -> Fields:
    """A body parser that needs no user, as ``call_action`` calls one: ``(body, me)``."""
    return lambda data, me: parse(data)


def call_action(
    name: str,
    service: Callable[..., dict[str, Any]],
    fields: Fields,
    request_schema: type[Serializer],
    summary: str,
    description: str | None = None,
) -> type[APIView]:
    """The view of ``POST /api/calls/{id}/<action>/`` for an action with nothing of its own: the
    body parsed by ``fields(body, me)`` (``me``: the user's name), then
    ``service(actor=, call_id=, **fields)``, answered ``{"call"}``.
    """

    class CallActionView(APIView):
        @extend_schema(
            request=request_schema,
            responses={200: s.CallOnlySerializer, **ERRORS},
            summary=summary,
            description=description,
        )
        def post(self, request: Request, call_id: str) -> Response:
            me = signed_in(request)
            parsed = fields(body(request), me.get_username())
            call = service(actor=me, call_id=validation.call_id(call_id), **parsed)
            return Response({"call": call})

    CallActionView.__name__ = CallActionView.__qualname__ = name
    return CallActionView


AcceptView = call_action(
    "AcceptView",
    services.accept,
    body_only(validation.device_fields),
    s.AcceptRequest,
    "Accept an invitation",
)
RejectView = call_action(
    "RejectView",
    services.reject,
    body_only(validation.reject_fields),
    s.RejectRequest,
    "Decline an invitation",
)
AckView = call_action(
    "AckView",
    services.acknowledge,
    body_only(validation.ack_fields),
    s.AckRequest,
    "This device shows the invitation (the REST form of call.ack)",
    "For a phone a push has just woken: inviting -> received; a no-op when already received.",
)
QuitView = call_action(
    "QuitView",
    services.quit_call,
    body_only(validation.device_fields),
    s.ExtendedDataRequest,
    "Leave the call",
)
CancelView = call_action(
    "CancelView",
    services.cancel,
    lambda data, me: validation.cancel_fields(data, me=me),
    s.CancelRequest,
    "Withdraw invitations you sent",
)
EndView = call_action(
    "EndView",
    services.end,
    body_only(validation.extended_data_fields),
    s.ExtendedDataRequest,
    "End the call for everyone",
)


class BlocksView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("page", int)],
        responses={200: s.BlockSerializer(many=True), **ERRORS},
        summary="The users you blocked, newest first",
    )
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            selectors.blocks_of(signed_in(request)), request, view=self
        )
        return paginator.get_paginated_response(
            [{"user": b.blocked.get_username(), "created_at": b.created_at} for b in page or []]
        )


class BlockView(APIView):
    @extend_schema(
        request=None,
        responses={201: s.BlockSerializer, 200: s.BlockSerializer, **ERRORS},
        summary="Block a user: their invitations to you answer as if you were busy",
    )
    def post(self, request: Request, username: str) -> Response:
        row, created = blocks.block(blocker=signed_in(request), username=username)
        return Response(
            {"user": username, "created_at": row.created_at}, status=201 if created else 200
        )

    @extend_schema(request=None, responses={204: None, **ERRORS}, summary="Unblock a user")
    def delete(self, request: Request, username: str) -> Response:
        blocks.unblock(blocker=signed_in(request), username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)
