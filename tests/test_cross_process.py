"""Scale-out: two Daphne processes sharing Redis and PostgreSQL work as one service.

Real processes, real sockets: ``manage.py serve --timers external`` twice (A and B) and
``manage.py runworker call-timers`` as a third process, on a PostgreSQL database created for
this run and a Redis channel-layer prefix of its own. Clients are what a phone would use: the
``websockets`` package and httpx.

It runs in the PostgreSQL pass of ``make test`` only (marker ``postgres_only``): several server
processes writing one SQLite file is not a deployment this project supports, and the pass
without DATABASE_URL has no PostgreSQL URL to create the database from.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio
import websockets

pytestmark = [pytest.mark.postgres_only, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
USERS = ("alice", "bob", "carol", "dave", "erin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin_dsn(url: str) -> tuple[str, str]:
    """(URL of the server's maintenance database, URL of a fresh database on the same server)."""
    parts = urlsplit(url)
    name = f"callsite_xproc_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{name}"))


class Cluster:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def start(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.procs[name] = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def serve(self, name: str) -> None:
        self.ports[name] = free_port()
        self.start(name, "serve", "--timers", "external", "--port", str(self.ports[name]))

    def wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        for name, port in self.ports.items():
            while True:
                assert self.procs[name].poll() is None, self.log(name)
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    assert time.monotonic() < end, f"{name} did not listen\n{self.log(name)}"
                    time.sleep(0.1)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # Daphne may wait for application instances to finish; a test cannot.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            try:
                self.kill(name, signal.SIGTERM)
            except Exception:  # keep stopping the others, and drop the database below
                pass

    def http(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def ws(self, name: str, token: str, device_id: str) -> str:
        return f"ws://127.0.0.1:{self.ports[name]}/ws/?token={token}&device_id={device_id}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Cluster, dict[str, str]]]:
    import psycopg
    import redis

    admin, db_url = admin_dsn(os.environ["DATABASE_URL"])
    db_name = urlsplit(db_url).path.lstrip("/")
    prefix = f"callsite-xproc-{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    logs = Path(tempfile.mkdtemp(prefix="callsite-xproc-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "callsite.settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "CHANNEL_LAYER_PREFIX": prefix,
        "CALLSITE_PRESENCE_HEARTBEAT": "0.5",
        "CALLSITE_PRESENCE_TTL": "2",
        "CALLSITE_PRESENCE_GRACE": "1",
        "CALLSITE_TIMER_RESCAN": "5",
        "THROTTLE_INVITATIONS": "10000/min",
        "PYTHONUNBUFFERED": "1",
    }
    c = Cluster(env, logs)
    try:
        c.manage("migrate", "--noinput", "-v", "0")
        tokens = json.loads(
            c.manage(
                "shell",
                "-c",
                "import json\n"
                "from django.contrib.auth.models import User\n"
                "from invitations import tokens\n"
                f"names = {list(USERS)!r}\n"
                "users = [User.objects.create_user(n, password='pw') for n in names]\n"
                "print(json.dumps({u.username: tokens.issue(user=u)[0] for u in users}))",
            ).strip().splitlines()[-1]
        )
        c.serve("A")
        c.serve("B")
        c.start("timers", "runworker", "call-timers")
        c.wait_ready()
        yield c, tokens
    finally:
        c.stop_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            # FORCE: a killed server's connections may linger on the server side for a moment.
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(f"{prefix}*", count=1000):
            r.delete(key)


class Client:
    """One device: a websocket and a REST client, both to the same server process."""

    def __init__(self, ws: Any, http: httpx.AsyncClient, name: str) -> None:
        self.ws = ws
        self.http = http
        self.name = name
        self.ready: dict[str, Any] = {}

    async def next(self, type: str, timeout: float = 5, skip: tuple[str, ...] = ()) -> Any:
        """The next event of ``type``; only event types in ``skip`` may come before it."""
        end = time.monotonic() + timeout
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), max(0.01, end - time.monotonic()))
            event = json.loads(raw)
            if event["type"] == type:
                return event
            assert event["type"] in skip + ("presence.changed",), (self.name, event)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        res = await self.http.post(path, json=body)
        assert res.status_code in (200, 201), res.text
        return res.json()


@pytest_asyncio.fixture
async def connect(cluster: tuple[Cluster, dict[str, str]]) -> AsyncIterator[Any]:
    c, tokens = cluster
    opened: list[Client] = []

    async def make(user: str, server: str, device_id: str) -> Client:
        ws = await websockets.connect(c.ws(server, tokens[user], device_id))
        http = httpx.AsyncClient(
            base_url=c.http(server), headers={"Authorization": f"Token {tokens[user]}"}
        )
        client = Client(ws, http, f"{user}@{server}")
        client.ready = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert client.ready["type"] == "session.ready", client.ready
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.ws.close()
        await client.http.aclose()


async def test_a_call_across_two_server_processes_and_a_timer_worker(
    cluster: tuple[Cluster, dict[str, str]], connect: Any
) -> None:
    c, _ = cluster
    alice = await connect("alice", "A", "alice-laptop")
    await alice.send({"type": "presence.subscribe", "users": ["bob", "carol"]})
    await alice.next("presence.snapshot")
    bob = await connect("bob", "B", "bob-phone")
    # Presence crosses processes: alice (on A) sees bob (on B) come online, and A's REST says so.
    while (await alice.next("presence.changed")) != {
        "type": "presence.changed",
        "user": "bob",
        "online": True,
    }:
        pass
    users = (await alice.http.get("/api/users/", params={"search": "bob"})).json()["results"]
    assert users[0]["online"] is True

    # alice, on A, invites bob, who is on B: bob rings.
    created = await alice.post(
        "/api/calls/", {"invitees": ["bob"], "device_id": "alice-laptop", "timeout": 60}
    )
    call_id = created["call"]["id"]
    received = await bob.next("call.invitation_received")
    assert (received["call_id"], received["inviter"]) == (call_id, "alice")

    # bob's device acknowledges: alice sees him ringing, with his device.
    await bob.send({"type": "call.ack", "call_id": call_id})
    changed = await alice.next("call.user_state_changed", skip=("call.user_state_changed",))
    while changed["state"] != "received":
        changed = await alice.next("call.user_state_changed")
    assert (changed["user"], changed["device_id"]) == ("bob", "bob-phone")

    # bob accepts through B's REST API: alice, on A, is told.
    await bob.post(f"/api/calls/{call_id}/accept/", {"device_id": "bob-phone"})
    accepted = await alice.next("call.user_state_changed")
    assert (accepted["state"], accepted["device_id"]) == ("accepted", "bob-phone")
    assert accepted["call"]["state"] == "ongoing"

    # WebRTC signalling crosses the processes both ways, in order.
    offer = {"description": {"type": "offer", "sdp": "v=0 offer"}}
    await bob.send({"type": "rtc.signal", "call_id": call_id, "to": "alice", "data": offer})
    for i in range(30):
        cand = {"candidate": {"candidate": f"candidate:{i}", "sdpMid": "0", "sdpMLineIndex": 0}}
        await bob.send({"type": "rtc.signal", "call_id": call_id, "to": "alice", "data": cand})
    skip = ("call.user_state_changed",)
    got = await alice.next("rtc.signal", skip=skip)
    assert (got["from"], got["from_device"], got["data"]) == ("bob", "bob-phone", offer)
    order = [(await alice.next("rtc.signal"))["data"]["candidate"]["candidate"] for _ in range(30)]
    assert order == [f"candidate:{i}" for i in range(30)]
    answer = {"description": {"type": "answer", "sdp": "v=0 answer"}}
    await alice.send({"type": "rtc.signal", "call_id": call_id, "to": "bob", "data": answer})
    got = await bob.next("rtc.signal", skip=skip)
    assert (got["from"], got["from_device"], got["data"]) == ("alice", "alice-laptop", answer)

    # A timeout fires in the worker process: carol (on B) calls dave (on A), nobody answers.
    carol = await connect("carol", "B", "carol-1")
    dave = await connect("dave", "A", "dave-1")
    ringing = await carol.post("/api/calls/", {"invitees": ["dave"], "timeout": 1})
    await dave.next("call.invitation_received")
    timed_out = await dave.next("call.invitation_timeout", timeout=6, skip=skip)
    assert timed_out["call_id"] == ringing["call"]["id"]
    ended = await carol.next("call.ended", timeout=6, skip=skip)
    assert ended["reason"] == "unanswered"

    # alice ends the call on A; bob hears it on B.
    await alice.post(f"/api/calls/{call_id}/end/", {})
    ended = await bob.next("call.ended", skip=skip)
    assert (ended["operator"], ended["reason"]) == ("alice", "ended")

    # Under Daphne a frame over 64 KiB closes with 4009 (Daphne refuses 1009 from applications).
    erin = await connect("erin", "A", "erin-1")
    await erin.ws.send(json.dumps({"type": "ping", "pad": "x" * 65536}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(erin.ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4009

    # A server process killed without closing its sockets does not leave its users online:
    # B dies with bob and carol on it; A sweeps their stale rows within the TTL (2 s here), and
    # the timer worker ends their presence grace (1 s here).
    c.kill("B")
    gone: set[str] = set()
    while not {"bob", "carol"} <= gone:
        event = await alice.next("presence.changed", timeout=8, skip=("call.ended",))
        if not event["online"]:
            gone.add(event["user"])
    users = (await alice.http.get("/api/users/", params={"search": "bob"})).json()["results"]
    assert users[0]["online"] is False
