"""The /ws/ route. The consumer itself lives in invitations/consumers.py."""

from typing import Any

from django.urls import path


def websocket_application() -> Any:
    from channels.routing import URLRouter

    from .consumers import DeviceConsumer
    from .ws_auth import WebSocketAuthMiddleware

    return WebSocketAuthMiddleware(URLRouter([path("ws/", DeviceConsumer.as_asgi())]))
