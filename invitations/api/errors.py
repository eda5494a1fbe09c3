"""Every API error, DRF's own included, in API.md's one envelope."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from invitations.errors import CallError, error_body

logger = logging.getLogger(__name__)

# DRF exception class -> (our code, message override or None to keep DRF's sentence).
_DRF_CODES: list[tuple[type[Exception], str]] = [
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "not_authenticated"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "throttled"),
    (exceptions.ParseError, "validation_error"),
    (exceptions.ValidationError, "validation_error"),
]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, CallError):
        set_rollback()
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "server_error")
        headers: dict[str, str] = {}
        # Set by DRF on authentication failures; django-stubs does not declare it.
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        details: dict[str, Any] | None = None
        if isinstance(exc, exceptions.ValidationError):
            details = (
                exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            )
            message = "Some fields are invalid."
        elif isinstance(exc, exceptions.ParseError):
            message = f"Malformed request body: {exc.detail}"
        else:
            message = str(exc.detail)
        if isinstance(exc, exceptions.Throttled):
            wait = getattr(exc, "wait", None)  # set by Throttled.__init__; not in the stubs
            if wait is not None:
                headers["Retry-After"] = str(int(wait) + 1)
                details = {"retry_after": int(wait) + 1}
            message = "Too many requests; slow down."
        return Response(error_body(code, message, details), status=exc.status_code, headers=headers)
    # Anything else is a bug: log it, answer in the envelope, never leak a traceback.
    logger.exception("unhandled API error", exc_info=exc)
    set_rollback()
    return Response(error_body("server_error", "Something went wrong on the server."), status=500)


def not_found_view(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown URLs under /api/ answer in the envelope instead of Django's HTML page."""
    hint = "" if request.path.endswith("/") else " API URLs end with a slash."
    return JsonResponse(
        error_body("not_found", f"No API endpoint at {request.path}.{hint}"), status=404
    )
