from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from invitations import tokens


class DeviceTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <token>`` (API.md); ``Bearer <token>`` is accepted too.

    The tokens are django-rest-knox's (hashed, expiring, renewed on use); ``invitations.tokens``
    checks them the way the WebSocket does. ``request.auth`` is the token's digest.
    """

    def authenticate(self, request: Request) -> tuple[Any, str] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in (b"token", b"bearer"):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        credential = tokens.check(key)
        if credential is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return credential.user, credential.token_digest or ""

    def authenticate_header(self, request: Request) -> str:
        return "Token"


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI document describes it: DRF's token scheme, ``Authorization: Token …``."""

    target_class = "invitations.api.authentication.DeviceTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme: dict[str, Any] = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Token"
        )
        return scheme
