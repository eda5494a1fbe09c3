"""Close WebSocket clients that stop reading (API.md "Limits": unsent output over 1 MiB, 4008).

ASGI gives an application no way to see how much of what it sent is still waiting: Daphne
accepts every ``websocket.send`` at once and Twisted buffers it for as long as the client does
not read, without bound. So the check sits where the buffer is, in Daphne's protocol: after each
frame it sends, a socket whose transport holds more than the limit unsent is closed with 4008
(the close frame cannot reach a client that does not read; autobahn then drops the connection
after its close-handshake timeout, and the application gets its ``websocket.disconnect``).

``install`` patches Daphne's ``WebSocketProtocol`` once per process; callsite/asgi.py calls it, so
it applies to ``manage.py serve`` and to ``daphne callsite.asgi:application`` alike. Under other
ASGI servers it does nothing; Uvicorn applies backpressure (``send`` waits) instead.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
_installed = False


def unsent_bytes(transport: Any) -> int:
    """What Twisted still holds for this connection (``abstract.FileDescriptor``'s buffers)."""
    # Daphne's HTTP channel may hand the socket over inside a ProtocolWrapper: unwrap it.
    for _ in range(5):
        if hasattr(transport, "dataBuffer") or getattr(transport, "transport", None) is None:
            break
        transport = transport.transport
    held = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
    return max(0, held) + getattr(transport, "_tempDataLen", 0)


def install(max_bytes: int) -> bool:
    """Make Daphne close sockets whose unsent output passes ``max_bytes``; False without Daphne."""
    global _installed
    if _installed:
        return True
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        return False
    original = WebSocketProtocol.serverSend

    def server_send(self: Any, content: Any, binary: bool = False) -> None:
        original(self, content, binary)
        if getattr(self, "_callsite_closing_slow", False) or self.transport is None:
            return
        if unsent_bytes(self.transport) > max_bytes:
            self._callsite_closing_slow = True
            logger.info("closing a WebSocket client that stopped reading (%s)", self.client_addr)
            self.serverClose(code=CLOSE_TOO_SLOW)

    WebSocketProtocol.serverSend = server_send
    _installed = True
    return True
