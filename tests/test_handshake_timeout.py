"""A WebSocket handshake may wait for the server longer than Daphne's own 5 s (real Daphne).

In a reconnect storm each socket's credential check queues behind every other socket's database
work, and Daphne rejects a handshake the application has not accepted within its connect timeout:
5 s by default, which rejected sockets of a 2,000-socket storm on one process (bench/README.md).
A rejected client reconnects, which only adds to the storm. ``manage.py serve`` hands Daphne
``CALLSITE_WS_CONNECT_TIMEOUT`` (30 s) instead.

End to end: the server's check of an hour-old token writes its renewed expiry, and this test holds
SQLite's write lock for longer than 5 s meanwhile, so the handshake waits that long.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import websockets

from tests.processes import Processes, base_env, create_users, free_port, wait_listening

HELD_SECONDS = 7.0  # longer than Daphne's default connect timeout (5 s)


def test_a_handshake_that_waits_longer_than_daphnes_default_still_connects(
    tmp_path: Path,
) -> None:
    port = free_port()
    db = tmp_path / "db.sqlite3"
    procs = Processes(base_env(CALLSITE_VAR_DIR=str(tmp_path), SQLITE_PATH=str(db)), tmp_path)
    procs.manage("migrate", "--noinput", "-v", "0")
    token = create_users(procs, ["late"])["late"]
    # Used an hour ago: the check renews its expiry, a write (tokens._renew).
    procs.manage(
        "shell",
        "-c",
        "from datetime import timedelta\nfrom django.db.models import F\n"
        "from knox.models import AuthToken\n"
        "AuthToken.objects.update(expiry=F('expiry') - timedelta(hours=2))",
    )
    procs.start_manage("server", "serve", "--port", str(port))
    try:
        wait_listening(port, alive=procs.procs["server"])
        holder = sqlite3.connect(db, isolation_level=None, timeout=30)
        holder.execute("BEGIN IMMEDIATE")  # SQLite's one write lock, until the COMMIT below

        async def connect() -> tuple[float, dict]:
            started = time.monotonic()
            release = asyncio.get_running_loop().call_later(
                HELD_SECONDS, lambda: holder.execute("COMMIT")
            )
            try:
                async with websockets.connect(
                    f"ws://127.0.0.1:{port}/ws/?device_id=phone&token={token}", open_timeout=60
                ) as ws:
                    waited = time.monotonic() - started
                    return waited, json.loads(await asyncio.wait_for(ws.recv(), 30))
            finally:
                release.cancel()

        waited, first = asyncio.run(connect())
        holder.close()
        assert waited >= HELD_SECONDS - 0.5, f"the handshake did not wait for the lock ({waited})"
        assert first["type"] == "session.ready" and first["user"] == "late"
    finally:
        procs.stop_all()
