"""Graceful shutdown (issue 11), with real processes and real sockets.

On SIGTERM a server stops accepting, closes its sockets with 1012 (service restart), lets the
requests in flight finish, and exits within 10 s with 1,000 sockets open; calls in progress stay
as they are in the database, so their devices resume on another process through session.ready.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.processes import (
    REDIS_URL,
    Processes,
    base_env,
    create_users,
    flush_redis_prefix,
    free_port,
    postgres_database,
    wait_listening,
)

pytestmark = pytest.mark.timeout(600)  # 1,000 connects on a busy 2-core machine

SOCKETS = 1000
# Ten sockets a user, the most API.md allows one user.
USERS = [f"user{i:03d}" for i in range(SOCKETS // 10)]


async def open_sockets(port: int, tokens: dict[str, str], count: int) -> list[Any]:
    limit = asyncio.Semaphore(50)

    async def one(i: int) -> Any:
        user = USERS[i % len(USERS)]
        url = f"ws://127.0.0.1:{port}/ws/?token={tokens[user]}&device_id=d{i}"
        async with limit:
            ws = await websockets.connect(url, open_timeout=30, max_queue=None)
            ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert ready["type"] == "session.ready"
            return ws

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def close_code(ws: Any) -> int | None:
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


async def until_refused(proc: Any, port: int) -> tuple[bool, float]:
    """(was the process still running when connections started to be refused, after how long)."""
    started = time.monotonic()
    while True:
        alive = proc.poll() is None
        if await asyncio.to_thread(refused, port):
            return alive, time.monotonic() - started
        await asyncio.sleep(0.02)


async def call_in_progress(base: str, tokens: dict[str, str]) -> tuple[str, list[Any]]:
    """alice calls bob and bob accepts, each with a socket open; returns the call id."""
    sockets = []
    port = int(base.rsplit(":", 1)[1])
    for user in ("alice", "bob"):
        url = f"ws://127.0.0.1:{port}/ws/?token={tokens[user]}&device_id={user}-1"
        ws = await websockets.connect(url)
        await ws.recv()
        sockets.append(ws)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        alice = {"Authorization": f"Token {tokens['alice']}"}
        bob = {"Authorization": f"Token {tokens['bob']}"}
        created = await http.post("/api/calls/", json={"invitees": ["bob"]}, headers=alice)
        call_id = created.json()["call"]["id"]
        accepted = await http.post(
            f"/api/calls/{call_id}/accept/", json={"device_id": "bob-1"}, headers=bob
        )
        assert accepted.status_code == 200, accepted.text
    return call_id, sockets


async def shutdown_with_load(
    procs: Processes, port: int, tokens: dict[str, str]
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    call_id, call_sockets = await call_in_progress(base, tokens)
    sockets = await open_sockets(port, tokens, SOCKETS - len(call_sockets))
    sockets += call_sockets
    codes = [asyncio.ensure_future(close_code(ws)) for ws in sockets]
    # Requests in flight when the signal comes: one process runs one at a time here
    # (CALLSITE_HTTP_CONCURRENCY=1), so most of them are still queued.
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        headers = {"Authorization": f"Token {tokens['alice']}"}
        requests = [asyncio.ensure_future(http.get("/api/me/", headers=headers)) for _ in range(30)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        procs.send_signal("server", signal.SIGTERM)
        stopped_accepting = await until_refused(procs.procs["server"], port)
        responses = await asyncio.gather(*requests, return_exceptions=True)
    exit_code = await asyncio.to_thread(procs.wait, "server", 15)
    elapsed = time.monotonic() - started
    closed = await asyncio.gather(*codes)
    return {
        "call_id": call_id,
        "elapsed": elapsed,
        "exit_code": exit_code,
        "stopped_accepting": stopped_accepting,
        "responses": responses,
        "codes": closed,
    }


async def resume(port: int, tokens: dict[str, str], call_id: str) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}/ws/?token={tokens['alice']}&device_id=alice-1"
    # alice stays connected (once the shutdown releases the devices, her leaving again would
    # start her own 2 s countdown, as any last device leaving does); bob has not come back.
    async with websockets.connect(url) as ws:
        ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await asyncio.sleep(3)  # past the offline grace (2 s) a disconnect would have started
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            headers = {"Authorization": f"Token {tokens['bob']}"}
            call = (await http.get(f"/api/calls/{call_id}/", headers=headers)).json()
    return {"ready": ready, "call": call}


def test_sigterm_with_1000_sockets_drains_and_exits_within_10_s(tmp_path: Path) -> None:
    # Given the embedded default (SQLite, in-memory layer, timers in the process) with 1,000
    # sockets open, a call in progress and 30 requests in flight
    env = base_env(
        CALLSITE_VAR_DIR=str(tmp_path),
        THROTTLE_INVITATIONS="100000/min",
        CALLSITE_HTTP_CONCURRENCY="1",
        CALLSITE_CALLER_OFFLINE_GRACE="2",
        LOG_FORMAT="text",
    )
    procs = Processes(env, tmp_path)
    procs.manage("migrate", "--noinput", "-v", "0")
    tokens = create_users(procs, ["alice", "bob", *USERS])
    port = free_port()
    procs.start_manage("server", "serve", "--port", str(port))
    try:
        wait_listening(port, alive=procs.procs["server"])
        # When it gets SIGTERM
        result = asyncio.run(shutdown_with_load(procs, port, tokens))
        log = procs.log("server")
        # Then it exits, cleanly, within 10 s
        assert result["exit_code"] == 0, log[-3000:]
        assert result["elapsed"] < 10, (result["elapsed"], log[-3000:])
        assert "exiting now" not in log, log[-3000:]  # the watchdog was not needed
        # It stopped accepting at once, while it drained, and every request in flight got its
        # answer
        still_draining, after = result["stopped_accepting"]
        assert still_draining and after < 2, result["stopped_accepting"]
        statuses = [getattr(r, "status_code", repr(r)) for r in result["responses"]]
        assert statuses == [200] * 30, statuses
        # Every socket was told to reconnect elsewhere: 1012, service restart
        assert result["codes"].count(1012) == SOCKETS, sorted(set(result["codes"]))
        # And the call in progress is as it was: its devices resume it on the next process
        procs.procs.pop("server")
        procs.start_manage("server2", "serve", "--port", str(port))
        wait_listening(port, alive=procs.procs["server2"])
        resumed = asyncio.run(resume(port, tokens, result["call_id"]))
        assert resumed["ready"]["current"]["id"] == result["call_id"]
        assert resumed["call"]["state"] == "ongoing", resumed["call"]
        states = {p["user"]: p["state"] for p in resumed["call"]["participants"]}
        assert states == {"alice": "accepted", "bob": "accepted"}, states
    finally:
        procs.stop_all()


# --- the production topology --------------------------------------------------------------

PAIRS = [("caller0", "callee0"), ("caller1", "callee1"), ("caller2", "callee2")]


async def call_cycles(ports: list[int], tokens: dict[str, str], seconds: float) -> int:
    """Full calls (invite, ring, accept, end) back to back on both servers, with sockets open."""
    sockets = []
    for i, (caller, callee) in enumerate(PAIRS):
        for user in (caller, callee):
            port = ports[i % len(ports)]
            url = f"ws://127.0.0.1:{port}/ws/?token={tokens[user]}&device_id={user}-1"
            ws = await websockets.connect(url)
            await ws.recv()
            sockets.append(ws)
    done = 0

    async def cycles(i: int, caller: str, callee: str) -> None:
        nonlocal done
        base = f"http://127.0.0.1:{ports[i % len(ports)]}"
        other = f"http://127.0.0.1:{ports[(i + 1) % len(ports)]}"
        end = time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=10) as http:
            auth = {"Authorization": f"Token {tokens[caller]}"}
            auth2 = {"Authorization": f"Token {tokens[callee]}"}
            while time.monotonic() < end:
                invite = {"invitees": [callee]}
                made = await http.post(f"{base}/api/calls/", json=invite, headers=auth)
                call_id = made.json()["call"]["id"]
                await http.post(f"{other}/api/calls/{call_id}/accept/", json={}, headers=auth2)
                await http.post(f"{base}/api/calls/{call_id}/end/", json={}, headers=auth)
                done += 1

    await asyncio.gather(*(cycles(i, *pair) for i, pair in enumerate(PAIRS)))
    return done


@pytest.mark.postgres_only
def test_after_load_both_servers_of_the_production_topology_exit_within_10_s(
    tmp_path: Path,
) -> None:
    prefix = f"callsite-shutdown-{uuid.uuid4().hex[:8]}"
    with postgres_database(os.environ["DATABASE_URL"]) as database_url:
        env = base_env(
            CALLSITE_ENV="production",
            SECRET_KEY="s" * 50,
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1",
            DATABASE_URL=database_url,
            REDIS_URL=REDIS_URL,
            CHANNEL_LAYER_PREFIX=prefix,
            THROTTLE_INVITATIONS="100000/min",
            THROTTLE_PAIR="100000/min",  # each caller rings the same callee again and again
            SECURE_SSL_REDIRECT="0",  # plain HTTP here; behind nginx TLS ends at the proxy
        )
        procs = Processes(env, tmp_path)
        try:
            procs.manage("migrate", "--noinput", "-v", "0")
            tokens = create_users(procs, [u for pair in PAIRS for u in pair])
            ports = [free_port(), free_port()]
            for name, port in zip(("A", "B"), ports, strict=True):
                procs.start_manage(name, "serve", "--timers", "external", "--port", str(port))
            procs.start_manage("timers", "runworker", "call-timers")
            for name, port in zip(("A", "B"), ports, strict=True):
                wait_listening(port, alive=procs.procs[name])
            # Given 8 s of full call cycles across both servers
            assert asyncio.run(call_cycles(ports, tokens, 8)) > 0
            # When every process gets SIGTERM
            started = time.monotonic()
            for name in ("A", "B", "timers"):
                procs.send_signal(name, signal.SIGTERM)
            # Then each exits within 10 s, the servers by draining (not by the watchdog)
            for name in ("A", "B", "timers"):
                left = max(0.1, 10 - (time.monotonic() - started))
                code = procs.wait(name, left)
                assert code is not None, f"{name} still running 10 s after SIGTERM"
            for name in ("A", "B"):
                assert procs.procs[name].returncode == 0
                assert "drained in" in procs.log(name), procs.log(name)[-2000:]
            assert procs.procs["timers"].returncode == 0
            assert "timer worker stopped" in procs.log("timers")
        finally:
            procs.stop_all()
            flush_redis_prefix(prefix)


# --- the timer worker -------------------------------------------------------------------------


def djangotool(env: dict[str, str], *args: str) -> dict[str, Any]:
    import subprocess
    import sys

    from tests.processes import ROOT

    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "djangotool.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sigterm_lets_the_timer_worker_finish_its_batch_and_the_next_one_goes_on(
    tmp_path: Path,
) -> None:
    # Given 1,000 invitations all due now, and a timer worker expiring them in batches
    env = base_env(CALLSITE_VAR_DIR=str(tmp_path), LOG_FORMAT="text", PYTHONPATH=".")
    procs = Processes(env, tmp_path)
    djangotool(env, "setup", "--users", "200")
    djangotool(
        env, "seed-timers", "--count", "1000", "--start", str(time.time() - 1), "--spread", "0",
        "--users", "200", "--batch", "sd",
    )
    procs.start_manage("worker", "runworker", "call-timers")
    end = time.monotonic() + 60
    while djangotool(env, "timer-report", "--batch", "sd")["timeout_rows"] == 0:
        assert time.monotonic() < end, procs.log("worker")
        time.sleep(0.2)
    # When it gets SIGTERM in the middle of them
    started = time.monotonic()
    procs.send_signal("worker", signal.SIGTERM)
    code = procs.wait("worker", 15)
    elapsed = time.monotonic() - started
    log = procs.log("worker")
    # Then it exits by itself, cleanly and soon, having said so
    assert code == 0, log[-2000:]
    assert elapsed < 10, log[-2000:]
    assert "timer worker finishing its batch" in log and "timer worker stopped" in log, log
    assert "exiting now" not in log
    # And every invitation is expired exactly once, or still due for the next worker
    report = djangotool(env, "timer-report", "--batch", "sd")
    assert report["more_than_once"] == 0
    assert report["calls_timed_out"] + report["still_ringing"] == 1000
    procs.procs.pop("worker")
    procs.start_manage("worker2", "runworker", "call-timers")
    try:
        end = time.monotonic() + 180
        while (report := djangotool(env, "timer-report", "--batch", "sd"))["still_ringing"]:
            assert time.monotonic() < end, procs.log("worker2")
            time.sleep(0.5)
        assert report["calls_timed_out"] == 1000 and report["more_than_once"] == 0
    finally:
        procs.stop_all()


# --- the device rows of a server that shut down ----------------------------------------------

STATE = """
import json
from invitations.models import Call, DeviceConnection, Participant, UserPresence
from django.utils import timezone
now = timezone.now()
left = lambda at: at and (at - now).total_seconds()
print(json.dumps({
    "devices": DeviceConnection.objects.count(),
    "presence": {
        p.user.username: [p.online, left(p.offline_deadline)]
        for p in UserPresence.objects.select_related("user")
    },
    "participant_deadlines": {
        p.user.username: left(p.offline_deadline)
        for p in Participant.objects.select_related("user")
    },
    "calls": [c.state for c in Call.objects.all()],
}))
"""


async def watch_presence(
    port: int, tokens: dict[str, str], reconnect: str, seconds: float, read_state: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """carol watches alice and bob on the new server while ``reconnect`` comes back; the
    database as it is before they leave again."""
    url = f"ws://127.0.0.1:{port}/ws/?token={tokens['carol']}&device_id=carol-1"
    frames: list[dict[str, Any]] = []
    async with websockets.connect(url) as carol:
        assert json.loads(await asyncio.wait_for(carol.recv(), 10))["type"] == "session.ready"
        await carol.send(json.dumps({"type": "presence.subscribe", "users": ["alice", "bob"]}))
        frames.append(json.loads(await asyncio.wait_for(carol.recv(), 10)))
        back_url = f"ws://127.0.0.1:{port}/ws/?token={tokens[reconnect]}&device_id={reconnect}-1"
        async with websockets.connect(back_url) as back:
            assert json.loads(await asyncio.wait_for(back.recv(), 10))["type"] == "session.ready"
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                try:
                    frames.append(json.loads(await asyncio.wait_for(carol.recv(), left)))
                except TimeoutError:
                    break
            state = await asyncio.to_thread(read_state)
    return frames, state


def test_a_server_that_shuts_down_releases_its_devices_within_the_presence_grace(
    tmp_path: Path,
) -> None:
    # Given a server holding alice's and bob's sockets, in a call with each other
    grace = 15.0
    env = base_env(
        CALLSITE_VAR_DIR=str(tmp_path),
        CALLSITE_PRESENCE_GRACE=str(grace),
        CALLSITE_CALLER_OFFLINE_GRACE="2",
        LOG_FORMAT="text",
    )
    procs = Processes(env, tmp_path)
    procs.manage("migrate", "--noinput", "-v", "0")
    tokens = create_users(procs, ["alice", "bob", "carol"])
    port = free_port()
    procs.start_manage("server", "serve", "--port", str(port))
    try:
        wait_listening(port, alive=procs.procs["server"])

        # When it gets SIGTERM
        async def shut_down() -> tuple[list[int | None], float, int | None]:
            _call_id, sockets = await call_in_progress(f"http://127.0.0.1:{port}", tokens)
            codes = [asyncio.ensure_future(close_code(ws)) for ws in sockets]
            started = time.monotonic()
            procs.send_signal("server", signal.SIGTERM)
            exit_code = await asyncio.to_thread(procs.wait, "server", 15)
            return list(await asyncio.gather(*codes)), time.monotonic() - started, exit_code

        codes, elapsed, exit_code = asyncio.run(shut_down())
        stopped_at = time.monotonic()
        log = procs.log("server")
        assert exit_code == 0 and elapsed < 10, (exit_code, elapsed, log[-3000:])
        assert codes == [1012, 1012]
        assert "released the devices of 2 users (2 with no device left elsewhere)" in log, log
        # Then its device rows are gone at once, not after another process's sweep (45 s)
        def read_state() -> dict[str, Any]:
            return dict(json.loads(procs.manage("shell", "-c", STATE).strip().splitlines()[-1]))

        state = read_state()
        assert state["devices"] == 0, state
        # and the presence grace runs: still online for subscribers, offline unless back in time
        for user in ("alice", "bob"):
            online, left = state["presence"][user]
            assert online is True and left is not None and 0 < left <= grace, state
        # The call waits for its devices as long as it did when the rows stayed (grace + TTL)
        assert state["calls"] == ["ongoing"], state
        for user in ("alice", "bob"):
            assert state["participant_deadlines"][user] > 30, state  # 2 s + the 45 s TTL

        # When alice comes back on the next server within the grace, and bob does not
        procs.procs.pop("server")
        procs.start_manage("server2", "serve", "--port", str(port))
        wait_listening(port, alive=procs.procs["server2"])
        left = grace - (time.monotonic() - stopped_at)
        assert left > 3, f"the next server took too long to start ({grace - left:.1f} s)"
        frames, state = asyncio.run(watch_presence(port, tokens, "alice", left + 5, read_state))
        # Then a subscriber sees no offline/online flap for alice, and bob offline after the grace
        snapshot, changes = frames[0], frames[1:]
        assert snapshot == {
            "type": "presence.snapshot",
            "users": [{"user": "alice", "online": True}, {"user": "bob", "online": True}],
        }, frames
        assert [c for c in changes if c.get("type") == "presence.changed"] == [
            {"type": "presence.changed", "user": "bob", "online": False}
        ], frames
        # The call waits for bob; alice's return cleared her countdown
        assert state["calls"] == ["ongoing"], state
        assert state["participant_deadlines"]["alice"] is None, state
        assert state["participant_deadlines"]["bob"] > 0, state  # bob's still runs
    finally:
        procs.stop_all()
