"""Twisted's TCP writes go to the socket at once when nothing waits before them.

Twisted never writes where it is asked to: ``FileDescriptor.write`` buffers the bytes, registers
the socket with the event loop for writability (an ``epoll_ctl`` and asyncio's bookkeeping), and
sends them on a later loop iteration, which then unregisters the socket again. Under Daphne that
is every WebSocket frame and every HTTP response. In the production timers benchmark (issue 9,
bench/README.md "eleventh round") that round trip was 15 % of the server's time, the ``send``
itself 1 %.

So, on a plain TCP connection with nothing buffered, ``write`` sends what the kernel takes now and
leaves only the rest to Twisted's buffer, as asyncio's own transports do. Order is kept: the fast
path is taken only when Twisted's buffers are empty, and a remainder goes through Twisted's
``write`` behind what was sent. Anything unusual takes Twisted's path unchanged: TLS, a closing
connection, a pull producer (which Twisted asks for more only from its deferred write), an error
from the socket (Twisted's deferred write then reports the lost connection as it always has).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_installed = False
_buffered_write: Callable[[Any, bytes], None] | None = None  # Twisted's own, kept by install()


def can_send_now(conn: Any) -> bool:
    """Nothing waits in Twisted's buffers, and nothing about the connection needs its path."""
    return bool(
        conn.connected
        and not conn.disconnecting
        and not conn._writeDisconnecting
        and not conn._writeDisconnected
        and not conn.TLS
        and not conn._tempDataLen
        and conn.offset == len(conn.dataBuffer)
        and (conn.producer is None or conn.streamingProducer)
    )


def write(conn: Any, data: bytes) -> None:
    """``tcp.Connection.write``: send now what the kernel takes, buffer the rest behind it."""
    if data and type(data) is bytes and can_send_now(conn):
        sent = conn.writeSomeData(data)
        if type(sent) is int:  # else CONNECTION_LOST: Twisted's deferred write reports it
            if sent >= len(data):
                return
            data = data[sent:]
    assert _buffered_write is not None
    _buffered_write(conn, data)


def write_sequence(conn: Any, iovec: Iterable[bytes]) -> None:
    write(conn, b"".join(iovec))


def install() -> bool:
    """Patch ``twisted.internet.tcp.Connection`` once per process; False without Twisted."""
    global _installed, _buffered_write
    if _installed:
        return True
    try:
        from twisted.internet import tcp
    except ImportError:
        return False
    _buffered_write = tcp.Connection.write  # _newtls.ConnectionMixin.write: TLS, else buffered
    tcp.Connection.write = write  # type: ignore[method-assign]
    tcp.Connection.writeSequence = write_sequence  # type: ignore[method-assign]
    _installed = True
    return True
