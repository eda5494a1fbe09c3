"""Timers are never silently absent (issue 11).

With the embedded settings, a plain ASGI server runs the timer worker in its own process:
``daphne callsite.asgi:application`` as much as ``manage.py serve``, and servers that speak the
lifespan protocol at their startup. Without a worker (``serve --timers external`` and nobody
running ``runworker``), readiness fails and names the timers.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import override_settings

from callsite import embedded_timers
from tests.processes import Processes, base_env, create_users, free_port, wait_listening

pytestmark = pytest.mark.timeout(120)


def invite_and_wait_for_timeout(base: str, tokens: dict[str, str]) -> str:
    alice = {"Authorization": f"Token {tokens['alice']}"}
    with httpx.Client(base_url=base, timeout=10) as http:
        call = http.post("/api/calls/", json={"invitees": ["bob"], "timeout": 1}, headers=alice)
        assert call.status_code == 201, call.text
        call_id = call.json()["call"]["id"]
        end = time.monotonic() + 8
        while True:
            state = http.get(f"/api/calls/{call_id}/", headers=alice).json()
            bob = next(p for p in state["participants"] if p["user"] == "bob")
            if bob["state"] != "inviting" or time.monotonic() > end:
                return bob["state"]
            time.sleep(0.2)


def test_plain_daphne_with_the_embedded_settings_runs_the_timers(tmp_path: Path) -> None:
    env = base_env(CALLSITE_VAR_DIR=str(tmp_path), LOG_FORMAT="text")
    procs = Processes(env, tmp_path)
    procs.manage("migrate", "--noinput", "-v", "0")
    tokens = create_users(procs, ["alice", "bob"])
    port = free_port()
    procs.start(
        "daphne",
        [sys.executable, "-m", "daphne", "-p", str(port), "callsite.asgi:application"],
    )
    try:
        wait_listening(port, alive=procs.procs["daphne"])
        base = f"http://127.0.0.1:{port}"
        assert invite_and_wait_for_timeout(base, tokens) == "timeout"
        assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        procs.stop_all()
    assert "timer worker running inside this server process" in procs.log("daphne")


def test_a_server_told_the_timers_run_elsewhere_is_not_ready_without_a_worker(
    tmp_path: Path,
) -> None:
    env = base_env(CALLSITE_VAR_DIR=str(tmp_path), LOG_FORMAT="text")
    procs = Processes(env, tmp_path)
    procs.manage("migrate", "--noinput", "-v", "0")
    tokens = create_users(procs, ["alice", "bob"])
    port = free_port()
    procs.start_manage("server", "serve", "--port", str(port), "--timers", "external")
    try:
        wait_listening(port, alive=procs.procs["server"])
        base = f"http://127.0.0.1:{port}"
        assert invite_and_wait_for_timeout(base, tokens) == "inviting"  # nothing timed it out
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503 and ready.json()["failing"] == ["timers"]
    finally:
        procs.stop_all()
    assert "not ready: timers: no timer worker has ever been seen" in procs.log("server")


@override_settings(CALLSITE={"EMBEDDED_TIMERS": True, "TIMER_RESCAN_SECONDS": 30})
@pytest.mark.django_db(transaction=True)
async def test_a_lifespan_server_starts_and_stops_the_worker() -> None:
    sent: list[dict[str, Any]] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = asyncio.ensure_future(embedded_timers.Lifespan()({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    await asyncio.sleep(0.3)
    from invitations.timers import RUNNING

    assert sent == [{"type": "lifespan.startup.complete"}]
    assert RUNNING, "no scheduler started"
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(app, 5)
    await asyncio.sleep(0.1)
    assert sent[-1] == {"type": "lifespan.shutdown.complete"}
    assert embedded_timers._task is not None and embedded_timers._task.done()
