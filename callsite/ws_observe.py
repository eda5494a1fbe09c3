"""Around every WebSocket: open-socket and frame metrics, log context, and its access lines.

An ASGI wrapper outside the consumer, so it sees what the server sees: ``websocket.accept``
(one more socket open), each frame in and out, and the end of the connection (one fewer). It
binds the socket's log context (a connection id as ``request_id``, and the ``device_id`` of
the query string) for everything the consumer logs; the consumer adds the user once it knows
it (``logs.annotate``). The access lines name the path only: the query carries the token.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from . import logs
from .metrics import SOCKETS_OPEN, WS_MESSAGES

access = logging.getLogger("callsite.access")

_IN = WS_MESSAGES.labels(direction="in")
_OUT = WS_MESSAGES.labels(direction="out")


def _device_id(scope: dict[str, Any]) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    values = query.get("device_id")
    return values[0][:64] if values else None


class ObservedWebSocket:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = {"open": False, "code": None}
        started = time.monotonic()
        token = logs.bind(request_id=uuid.uuid4().hex, device_id=_device_id(scope))

        async def counted_receive() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                _IN.inc()
            elif kind == "websocket.disconnect":
                state["code"] = message.get("code")
            return message

        async def counted_send(message: dict[str, Any]) -> None:
            kind = message["type"]
            if kind == "websocket.send":
                _OUT.inc()
            elif kind == "websocket.accept" and not state["open"]:
                state["open"] = True
                SOCKETS_OPEN.inc()
                access.info("WS open %s", scope.get("path"), extra={"path": scope.get("path")})
            elif kind == "websocket.close" and state["code"] is None:
                state["code"] = message.get("code", 1000)
            await send(message)

        try:
            await self.app(scope, counted_receive, counted_send)
        finally:
            if state["open"]:
                SOCKETS_OPEN.dec()
                access.info(
                    "WS closed %s %s",
                    scope.get("path"),
                    state["code"],
                    extra={
                        "path": scope.get("path"),
                        "close_code": state["code"],
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    },
                )
            logs.reset(token)
