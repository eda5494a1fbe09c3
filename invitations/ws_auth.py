"""Placeholder: WebSocket authentication (live delivery issue)."""

from channels.auth import AuthMiddlewareStack


def WebSocketAuthMiddleware(inner):  # noqa: N802
    return AuthMiddlewareStack(inner)
