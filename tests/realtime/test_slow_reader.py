"""A client that stops reading is closed once 1 MiB of output waits for it (API.md: 4008).

Daphne's own WebSocket protocol class, patched by callsite/wsbuffer.py (which callsite/asgi.py
installs), on a transport whose buffer is Twisted's: what a real connection to a client that
does not read holds.
"""

from __future__ import annotations

from typing import Any

from daphne.ws_protocol import WebSocketProtocol

import callsite.asgi  # noqa: F401  (installs the patch, as serving does)
from callsite.wsbuffer import CLOSE_TOO_SLOW, unsent_bytes

LIMIT = 1024 * 1024


class StuckTransport:
    """Twisted's FileDescriptor buffers, for a peer that reads nothing: writes only pile up."""

    def __init__(self) -> None:
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataBuffer: list[bytes] = []
        self._tempDataLen = 0

    def write(self, data: bytes) -> None:
        self._tempDataBuffer.append(data)
        self._tempDataLen += len(data)


class Wrapper:
    """Daphne may hand the socket over inside a ProtocolWrapper."""

    def __init__(self, inner: StuckTransport) -> None:
        self.transport = inner

    def write(self, data: bytes) -> None:
        self.transport.write(data)


def protocol(transport: Any) -> tuple[Any, list[int]]:
    proto = WebSocketProtocol.__new__(WebSocketProtocol)
    closed: list[int] = []
    proto.state = WebSocketProtocol.STATE_OPEN
    proto.transport = transport
    proto.client_addr = ("198.51.100.7", 50000)
    proto.sendMessage = lambda payload, binary=False: transport.write(payload)  # type: ignore
    proto.serverClose = lambda code=None: closed.append(code)  # type: ignore
    return proto, closed


def test_the_socket_is_closed_with_4008_once_unsent_output_passes_1_mib() -> None:
    stuck = StuckTransport()
    proto, closed = protocol(Wrapper(stuck))
    frame = "x" * (48 * 1024)
    sent = 0
    while sent <= LIMIT:
        assert closed == []
        proto.serverSend(frame)
        sent += len(frame)
    assert unsent_bytes(stuck) > LIMIT
    assert closed == [CLOSE_TOO_SLOW]
    proto.serverSend(frame)  # more output does not close twice
    assert closed == [CLOSE_TOO_SLOW]


def test_a_client_that_reads_is_never_closed() -> None:
    stuck = StuckTransport()
    proto, closed = protocol(stuck)
    for _ in range(100):
        proto.serverSend("x" * (48 * 1024))
        stuck._tempDataBuffer, stuck._tempDataLen = [], 0  # the kernel took it
    assert closed == []
