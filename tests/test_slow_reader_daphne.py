"""A client that stops reading is closed with 4008 by a real Daphne server (API.md "Limits").

End to end, no fakes: ``manage.py serve`` (Daphne) in its own process; the slow client is a raw
TCP socket with a tiny receive buffer that does the WebSocket handshake and then never calls
``recv()`` again, while it asks for large ``presence.snapshot`` frames (each ``presence.subscribe``
of 500 long usernames is answered with 35.5 KB). The kernel buffers on both sides fill first; the
server must then see its backlog pass 1 MiB, log why, close the socket with 4008 and drop it, and
every other socket on the server must keep working throughout.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import struct
import time
from pathlib import Path

import httpx
import websockets

from tests.processes import Processes, base_env, create_users, free_port, wait_listening

SUBSCRIBED = [f"subscribed-user-with-a-rather-long-name-{i:04d}" for i in range(500)]
# One presence.snapshot of them: {"user":"<name>","online":false}, per user.
SNAPSHOT_BYTES = sum(len(n) + len('{"user":"","online":false},') for n in SUBSCRIBED)
LIMIT = 1024 * 1024


def masked_text_frame(payload: bytes) -> bytes:
    """A client-to-server WebSocket text frame (clients must mask, RFC 6455 5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def stuck_client(port: int, token: str) -> socket.socket:
    """Handshake, then never read again; its receive buffer is as small as the kernel allows."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # before connect: small window
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws/?device_id=stuck HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Token {token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: read the 101 response and not one byte more
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def dropped(sock: socket.socket) -> bool:
    """Has the server dropped the connection? Reads (and discards) what is buffered to see."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        sock.setblocking(True)


async def other_socket_keeps_working(port: int, token: str, stop: asyncio.Event) -> int:
    """A normal client on the same server: ping -> pong, every 0.2 s, until told to stop."""
    pongs = 0
    url = f"ws://127.0.0.1:{port}/ws/?device_id=fine"
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Token {token}"}
    ) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.ready"
        while not stop.is_set():
            await ws.send('{"type":"ping"}')
            while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "pong":
                pass
            pongs += 1
            await asyncio.sleep(0.2)
    return pongs


def serve_with_users(
    tmp_path: Path, users: list[str], others: list[str], **env: str
) -> tuple[Processes, int, dict[str, str]]:
    """``manage.py serve`` on a fresh database: ``users`` with tokens, ``others`` to watch, and
    a socket budget high enough for a client that asks fast. The caller stops the processes."""
    port = free_port()
    procs = Processes(
        base_env(
            CALLSITE_VAR_DIR=str(tmp_path),
            SQLITE_PATH=str(tmp_path / "db.sqlite3"),
            # A client that asks fast: its budget must not close it (4429) before its backlog does.
            CALLSITE_WS_RATE="1000",
            CALLSITE_WS_BURST="1000",
            **env,
        ),
        tmp_path,
    )
    procs.manage("migrate", "--noinput", "-v", "0")
    tokens = create_users(procs, users)
    procs.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.bulk_create([User(username=n) for n in {others!r}])",
    )
    procs.start_manage("server", "serve", "--port", str(port))
    try:
        wait_listening(port, alive=procs.procs["server"])
    except BaseException:
        procs.stop_all()
        raise
    return procs, port, tokens


def test_a_client_that_stops_reading_is_closed_with_4008_by_real_daphne(tmp_path: Path) -> None:
    procs, port, tokens = serve_with_users(tmp_path, ["stuck", "fine"], SUBSCRIBED)
    try:

        async def scenario() -> tuple[bool, float, int, int]:
            stop = asyncio.Event()
            other = asyncio.create_task(other_socket_keeps_working(port, tokens["fine"], stop))
            sock = await asyncio.to_thread(stuck_client, port, tokens["stuck"])
            subscribe = masked_text_frame(
                json.dumps({"type": "presence.subscribe", "users": SUBSCRIBED}).encode()
            )
            sock.settimeout(5)
            sent = 0
            started = time.monotonic()
            closed_at = None
            try:
                while time.monotonic() - started < 60:
                    if "stopped reading" in procs.log("server"):
                        closed_at = time.monotonic() - started
                        break
                    try:
                        await asyncio.to_thread(sock.sendall, subscribe)
                        sent += 1
                    except (TimeoutError, OSError):
                        pass  # the server stopped reading from us too: keep watching the log
                    await asyncio.sleep(0.04)  # paced, so the server keeps up with the asks
                # Then the connection goes: autobahn gives up on the close handshake.
                gone = False
                end = time.monotonic() + 30
                while closed_at is not None and time.monotonic() < end and not gone:
                    gone = await asyncio.to_thread(dropped, sock)
                    await asyncio.sleep(0.5)
                assert not other.done(), other  # the other socket still answers
            finally:
                sock.close()
                stop.set()
            pongs = await other
            return gone, closed_at or -1.0, sent, pongs

        gone, closed_at, sent, pongs = asyncio.run(scenario())
        log = procs.log("server")
        assert closed_at >= 0, f"not closed after {sent} subscribes:\n{log[-3000:]}"
        match = re.search(r"stopped reading.* with 4008: (\d+) bytes unsent.*", log)
        assert match is not None, log[-3000:]
        print(f"closed after {closed_at:.1f} s and {sent} subscribes: {match.group(0)}")
        # Near the cap, not once the kernel's send buffer (up to tcp_wmem's 4 MiB) is full too:
        # the server answered at most `sent` subscribes before it closed the socket. (Counting
        # Twisted's buffer alone it closed after 207 asks, ~7 MB: 4 MiB in the kernel, and more.)
        assert sent * SNAPSHOT_BYTES < 4 * LIMIT, (sent, match.group(0))
        assert LIMIT < int(match.group(1)) < LIMIT + 2 * SNAPSHOT_BYTES
        assert gone, "the server did not drop the stuck connection"
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "callsite_websockets_closed_slow_total 1.0" in metrics
        assert pongs > 0
        assert "Traceback" not in log, log[-3000:]
    finally:
        procs.stop_all()
