"""The /ws/ route: authentication (auth.py) around the device consumer (consumer.py)."""

from typing import Any

from django.urls import path


def websocket_application() -> Any:
    from channels.routing import URLRouter

    from .auth import WebSocketAuthMiddleware
    from .consumer import DeviceConsumer

    return WebSocketAuthMiddleware(URLRouter([path("ws/", DeviceConsumer.as_asgi())]))
