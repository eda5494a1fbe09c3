"""A closed socket leaves nothing for the cyclic garbage collector (issue 9).

Each closed WebSocket used to leave about 65 objects in reference cycles (autobahn's protocol
and its ``is_closed`` Deferred, Twisted's HTTP channel and the request it upgraded, and all they
held), freed only by a full collection. The server now freezes long-lived objects out of the
collector (callsite/collector.py), where such a cycle would wait for the hourly unfreeze, so
closes must leave none (callsite/server.py).

End to end: ``manage.py serve`` in its own process, with test instrumentation on its
PYTHONPATH (tests/gcprobe/sitecustomize.py) that keeps what the collector finds between two
marks. Sockets connect as the app does, subscribe, and close, cleanly and abruptly.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import websockets

from tests.processes import Processes, base_env, create_users, free_port, wait_listening

PROBE = Path(__file__).resolve().parent / "gcprobe"
SOCKETS = 12
# Django's ORM makes one small cycle per select_related query (a recursive closure in
# SQLCompiler.get_select): short-lived, never frozen for long, and not the server's to fix.
DJANGO_CLOSURE = {"builtins.function", "builtins.cell", "builtins.tuple"}


async def open_socket(port: int, token: str, device: str, names: list[str]) -> object:
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/?token={token}&device_id={device}")
    while json.loads(await ws.recv())["type"] != "session.ready":
        pass
    await ws.send(json.dumps({"type": "presence.subscribe", "users": names}))
    while json.loads(await ws.recv())["type"] != "presence.snapshot":
        pass
    return ws


def test_sockets_closed_cleanly_or_cut_leave_no_cyclic_garbage(tmp_path: Path) -> None:
    port = free_port()
    probe = tmp_path / "probe"
    probe.mkdir()
    env = base_env(
        CALLSITE_VAR_DIR=str(tmp_path),
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        PYTHONPATH=str(PROBE),
        GCPROBE_DIR=str(probe),
        CALLSITE_PRESENCE_GRACE="0.5",
    )
    procs = Processes(env, tmp_path)
    procs.manage("migrate", "--noinput", "-v", "0")
    names = [f"u{i}" for i in range(SOCKETS)]
    tokens = create_users(procs, names)
    procs.start_manage("server", "serve", "--port", str(port))
    try:
        wait_listening(port, alive=procs.procs["server"])

        async def scenario() -> None:
            (probe / "start").touch()
            end = time.monotonic() + 30
            while not (probe / "started").exists() and time.monotonic() < end:
                await asyncio.sleep(0.05)
            socks = [await open_socket(port, tokens[n], f"phone-{n}", names) for n in names]
            for i, ws in enumerate(socks):
                if i % 2:
                    ws.transport.abort()  # type: ignore[attr-defined]  # a phone losing signal
                else:
                    await ws.close()  # type: ignore[attr-defined]
            await asyncio.sleep(3)  # the graces end, every consumer finishes, Daphne reaps
            (probe / "stop").touch()

        asyncio.run(scenario())
        end = time.monotonic() + 30
        while not (probe / "garbage.json").exists() and time.monotonic() < end:
            time.sleep(0.1)
        kinds: dict[str, int] = json.loads((probe / "garbage.json").read_text())
    finally:
        procs.stop_all()
    left = {kind: n for kind, n in kinds.items() if kind not in DJANGO_CLOSURE}
    assert not left, f"closed sockets left cyclic garbage: {kinds}"
