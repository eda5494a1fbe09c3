"""Close WebSocket clients that stop reading (API.md "Limits": unsent output over 1 MiB, 4008).

ASGI gives an application no way to see how much of what it sent is still waiting: Daphne
accepts every ``websocket.send`` at once and Twisted buffers it for as long as the client does
not read, without bound. So the check sits where the buffer is, in Daphne's protocol: after each
frame it sends, a socket with more than the limit unsent is closed with 4008 (the close frame
cannot reach a client that does not read; autobahn then drops the connection after its
close-handshake timeout, and the application gets its ``websocket.disconnect``). Frames the
application sends to a socket already closing are dropped, not raised back into it.

"Unsent" is both buffers: Twisted's, and the kernel's send queue (``TIOCOUTQ``: bytes the client
has not acknowledged). The kernel's comes first and is large: Linux autotunes a socket's send
buffer up to ``net.ipv4.tcp_wmem``'s maximum (4 MiB by default), and Twisted's buffer only grows
once that is full. Measured end to end (tests/test_slow_reader_daphne.py, a client with a 1 KiB
receive buffer that never reads): counting Twisted's buffer alone, the socket was closed only
after the client had asked for 207 frames of 35.5 KB (up to 7.3 MB); counting both, at 1 MiB.

``install`` patches Daphne's ``WebSocketProtocol`` once per process; callsite/asgi.py calls it, so
it applies to ``manage.py serve`` and to ``daphne callsite.asgi:application`` alike. Under other
ASGI servers it does nothing; Uvicorn applies backpressure (``send`` waits) instead.
"""

from __future__ import annotations

import fcntl
import logging
import struct
import termios
from typing import Any

from callsite import metrics

logger = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
_installed = False


def _unwrap(transport: Any) -> Any:
    # Daphne's HTTP channel may hand the socket over inside a ProtocolWrapper: unwrap it.
    for _ in range(5):
        if hasattr(transport, "dataBuffer") or getattr(transport, "transport", None) is None:
            break
        transport = transport.transport
    return transport


def twisted_unsent(transport: Any) -> int:
    """What Twisted still holds for this connection (``abstract.FileDescriptor``'s buffers)."""
    transport = _unwrap(transport)
    held = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
    return max(0, held) + getattr(transport, "_tempDataLen", 0)


def kernel_unsent(transport: Any) -> int:
    """Bytes in the socket's kernel send queue the client has not acknowledged (0 if unknown)."""
    fileno = getattr(_unwrap(transport), "fileno", None)
    if fileno is None:
        return 0
    try:
        raw = fcntl.ioctl(fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError, AttributeError):  # closed, not a socket, or not Linux
        return 0
    queued: int = struct.unpack("i", raw)[0]
    return max(0, queued)


def unsent_bytes(transport: Any) -> int:
    """Everything sent to this client that it has not taken yet: Twisted's and the kernel's."""
    return twisted_unsent(transport) + kernel_unsent(transport)


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
        if getattr(self, "_callsite_closing_slow", False) or self.state in (
            self.STATE_CLOSING,
            self.STATE_CLOSED,
        ):
            return  # the socket is going: autobahn would raise Disconnected into the app
        original(self, content, binary)
        if self.transport is None:
            return
        twisted, kernel = twisted_unsent(self.transport), kernel_unsent(self.transport)
        if twisted + kernel > max_bytes:
            self._callsite_closing_slow = True
            metrics.WS_CLOSED_SLOW.inc()
            logger.warning(
                "closing a WebSocket client that stopped reading (%s) with %s: %d bytes unsent "
                "(%d in the server's buffer, %d in the kernel's send queue)",
                self.client_addr,
                CLOSE_TOO_SLOW,
                twisted + kernel,
                twisted,
                kernel,
            )
            self.serverClose(code=CLOSE_TOO_SLOW)

    WebSocketProtocol.serverSend = server_send
    _installed = True
    return True
