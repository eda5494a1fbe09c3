"""Twisted's TCP writes go to the socket at once when nothing waits (callsite/direct_write.py).

The unit tests hold the rules with a stand-in connection; the end-to-end test runs a real Daphne
server and a client that reads late, so that the server's writes go out partly at once and
partly through Twisted's buffer, and checks that every frame arrives whole and in order.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from callsite import direct_write
from tests.test_slow_reader_daphne import masked_text_frame, serve_with_users, stuck_client


class Conn:
    """The attributes of ``twisted.internet.tcp.Connection`` that the fast path reads."""

    connected = True
    disconnecting = False
    _writeDisconnecting = False  # noqa: N815 (Twisted's name)
    _writeDisconnected = False  # noqa: N815 (Twisted's name)
    TLS = False
    producer: Any = None
    streamingProducer = True  # noqa: N815 (Twisted's name)

    def __init__(self, takes: int | Exception = 1 << 30) -> None:
        self.takes = takes
        self.sent: list[bytes] = []
        self.buffered: list[bytes] = []
        self._tempDataLen = 0
        self.dataBuffer = b""
        self.offset = 0

    def writeSomeData(self, data: bytes) -> int | Exception:  # noqa: N802 (Twisted's name)
        if isinstance(self.takes, Exception):
            return self.takes
        self.sent.append(data[: self.takes])
        return min(len(data), self.takes)


@pytest.fixture
def buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    def twisted_write(conn: Conn, data: bytes) -> None:
        conn.buffered.append(data)
        conn._tempDataLen += len(data)

    monkeypatch.setattr(direct_write, "_buffered_write", twisted_write)


@pytest.mark.usefixtures("buffered")
def test_nothing_waiting_goes_to_the_socket_at_once() -> None:
    conn = Conn()
    direct_write.write(conn, b"frame")
    assert conn.sent == [b"frame"] and conn.buffered == []


@pytest.mark.usefixtures("buffered")
def test_what_the_kernel_does_not_take_waits_in_twisteds_buffer_and_keeps_its_order() -> None:
    conn = Conn(takes=3)
    direct_write.write(conn, b"frame-1")
    direct_write.write(conn, b"frame-2")  # behind the remainder, never before it
    assert conn.sent == [b"fra"]
    assert conn.buffered == [b"me-1", b"frame-2"]


@pytest.mark.usefixtures("buffered")
@pytest.mark.parametrize(
    "state",
    [
        {"TLS": True},
        {"disconnecting": True},
        {"connected": False},
        {"_writeDisconnecting": True},
        {"offset": 0, "dataBuffer": b"unsent"},
        {"producer": object(), "streamingProducer": False},  # a pull producer waits for doWrite
    ],
)
def test_anything_unusual_takes_twisteds_path(state: dict[str, Any]) -> None:
    conn = Conn()
    for name, value in state.items():
        setattr(conn, name, value)
    direct_write.write(conn, b"frame")
    assert conn.sent == [] and conn.buffered == [b"frame"]


@pytest.mark.usefixtures("buffered")
def test_a_lost_connection_is_left_for_twisted_to_report() -> None:
    conn = Conn(takes=ConnectionResetError())
    direct_write.write(conn, b"frame")
    assert conn.buffered == [b"frame"]  # Twisted's doWrite meets the error and closes


@pytest.mark.usefixtures("buffered")
def test_a_sequence_goes_as_one_write() -> None:
    conn = Conn()
    direct_write.write_sequence(conn, [b"HTTP/1.1 200 OK\r\n", b"\r\n", b"body"])
    assert conn.sent == [b"HTTP/1.1 200 OK\r\n\r\nbody"]


NAMES = [f"late-reader-watches-user-with-a-long-name-{i:04d}" for i in range(400)]


def read_frames(sock: socket.socket, count: int, chunk: int) -> list[str]:
    """``count`` unmasked server-to-client text frames, whole."""
    buf = b""
    frames: list[str] = []
    sock.settimeout(20)
    while len(frames) < count:
        while True:  # parse what is there
            if len(buf) < 2:
                break
            n, head = buf[1] & 0x7F, 2
            if n == 126:
                n, head = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                n, head = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < head + n:
                break
            assert buf[0] == 0x81, buf[:2]  # FIN + text: nothing split or interleaved
            frames.append(buf[head : head + n].decode())
            buf = buf[head + n :]
        if len(frames) < count:
            data = sock.recv(chunk)  # a little at a time: the server writes as room frees up
            assert data, f"closed after {len(frames)} frames"
            buf += data
    return frames


def test_a_late_reader_gets_every_frame_whole_and_in_order(tmp_path: Path) -> None:
    """Snapshots of growing size, asked for while the client reads nothing: the kernel's buffers
    fill, the server's writes go out in part, and the rest waits in Twisted's buffer."""
    procs, port, tokens = serve_with_users(
        tmp_path,
        ["late"],
        NAMES,
        # Past what the kernel buffers (up to tcp_wmem's 4 MiB), so that Twisted's buffer fills.
        CALLSITE_WS_MAX_BUFFER=str(64 * 1024 * 1024),
    )
    try:
        sock = stuck_client(port, tokens["late"])
        asks = [100 + i * 37 % 300 for i in range(250)]  # 100 to 399 users each: ~6 MB in all

        def ask() -> None:
            for n in asks:
                frame = {"type": "presence.subscribe", "users": NAMES[:n]}
                sock.sendall(masked_text_frame(json.dumps(frame).encode()))
                time.sleep(0.004)

        asking = threading.Thread(target=ask)
        asking.start()
        time.sleep(1.5)  # the server writes while nobody reads, then while the client drains
        frames = [json.loads(f) for f in read_frames(sock, 1 + len(asks), chunk=8192)]
        asking.join()
        sock.close()
        assert frames[0]["type"] == "session.ready"
        snapshots = [f for f in frames[1:] if f["type"] == "presence.snapshot"]
        assert [len(f["users"]) for f in snapshots] == asks
        assert "Traceback" not in procs.log("server")
    finally:
        procs.stop_all()


def test_the_server_process_installs_it() -> None:
    from twisted.internet import tcp

    import callsite.asgi  # noqa: F401  (what manage.py serve and daphne load)

    assert tcp.Connection.write is direct_write.write
