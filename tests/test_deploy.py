"""deploy/ works: nginx and coturn accept its configs (the real Debian binaries), and the
compose file's topology, brought up as plain processes with the same commands, serves calls
through nginx over TLS and WebSockets, with the timer worker and TURN credentials coturn takes.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from calls.ice import turn_credentials
from tests import deploy_kit as kit
from tests.processes import (
    REDIS_URL,
    ROOT,
    Processes,
    base_env,
    create_users,
    flush_redis_prefix,
    free_port,
    postgres_database,
    wait_listening,
)

pytestmark = pytest.mark.timeout(240)

needs_nginx = pytest.mark.skipif(
    kit.binary("nginx") is None,
    reason="nginx is not installed (Debian package nginx; `make test` installs it)",
)
needs_coturn = pytest.mark.skipif(
    kit.binary("turnserver") is None,
    reason="coturn is not installed (Debian package coturn; `make test` installs it)",
)


@needs_nginx
@pytest.mark.parametrize(
    ("upstream", "servers"),
    [
        ("nginx/upstream.conf", None),
        ("compose/nginx-upstream.conf", {"server1:8000": 8001, "server2:8000": 8002}),
    ],
    ids=["systemd", "compose"],
)
def test_nginx_accepts_the_site(
    tmp_path: Path, upstream: str, servers: dict[str, int] | None
) -> None:
    main = kit.nginx_site(tmp_path, upstream=upstream, servers=servers)
    result = kit.nginx_test(main)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


def start_coturn(procs: Processes, tmp_path: Path, port: int, extra: list[str]) -> str:
    """Start coturn on deploy/coturn/turnserver.conf; returns its start-up log once it is up."""
    procs.start("coturn", kit.coturn_argv(tmp_path, port, extra=extra))
    end = time.monotonic() + 20
    while "Total General servers" not in procs.log("coturn"):
        assert procs.procs["coturn"].poll() is None, procs.log("coturn")
        assert time.monotonic() < end, procs.log("coturn")
        time.sleep(0.1)
    return procs.log("coturn")


@needs_coturn
def test_coturn_accepts_its_config_and_the_app_s_turn_credentials(tmp_path: Path) -> None:
    secret = "turn-rest-" + uuid.uuid4().hex
    port = kit.free_turn_port()
    procs = Processes(base_env(), tmp_path)
    try:
        startup = start_coturn(procs, tmp_path, port, [f"--static-auth-secret={secret}"])
        # coturn reports a bad line and carries on: its start-up log is the config check.
        for problem in kit.CONFIG_ERRORS:
            assert problem not in startup, startup
        # Credentials as calls/ice.py makes them for a device get a relay...
        good = turn_credentials("alice", secret=secret, ttl=600)
        try:
            relayed = asyncio.run(kit.turn_allocate(port, good["username"], good["credential"]))
        except TimeoutError:
            raise AssertionError(f"coturn did not answer:\n{procs.log('coturn')[-3000:]}") from None
        assert relayed[0] == "127.0.0.1"
        # ...and those of another secret, or expired ones, do not.
        other = turn_credentials("alice", secret="not-" + secret, ttl=600)
        with pytest.raises(Exception, match="401"):
            asyncio.run(kit.turn_allocate(port, other["username"], other["credential"]))
        expired = turn_credentials("alice", secret=secret, ttl=600, now=time.time() - 3600)
        with pytest.raises(Exception, match="401"):
            asyncio.run(kit.turn_allocate(port, expired["username"], expired["credential"]))
    finally:
        procs.stop_all()


# --- the compose topology, without Docker ----------------------------------------------------

HOST = "127.0.0.1"  # CALLSITE_HOST: the name clients use (nginx's default server here)
APP_SERVICES = ("migrate", "collectstatic", "server1", "server2", "timers")


def argv_of(service: dict[str, Any], port: int | None = None) -> list[str]:
    """The compose command as a local process: this interpreter, loopback, a free port."""
    argv = list(service["command"])
    assert argv[0] == "python", argv
    argv[0] = sys.executable
    if "--bind" in argv:
        argv[argv.index("--bind") + 1] = "127.0.0.1"
    if "--port" in argv:
        assert port is not None
        argv[argv.index("--port") + 1] = str(port)
    return argv


def env_of(
    service: dict[str, Any], database_url: str, prefix: str, var_dir: Path
) -> dict[str, str]:
    env = base_env(**{k: str(v) for k, v in service["environment"].items()})
    # The compose hosts, as this machine has them.
    assert urlsplit(env["DATABASE_URL"]).hostname == "postgres"
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        CHANNEL_LAYER_PREFIX=prefix,  # shares this Redis with other test runs
        CALLSITE_VAR_DIR=str(var_dir),  # the image's ENV; the static volume lives under it
    )
    return env


class Topology:
    def __init__(self, procs: Processes, https: int, http: int, turn: int, tokens: dict[str, str]):
        self.procs, self.https, self.http, self.turn, self.tokens = procs, https, http, turn, tokens
        self.server_ports: dict[str, int] = {}
        self.metrics_token = ""

    @property
    def base(self) -> str:
        return f"https://{HOST}:{self.https}"

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Token {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.base, verify=False, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.skip(reason="needs PostgreSQL, as compose runs it: `make test-postgres`")
    if kit.binary("nginx") is None or kit.binary("turnserver") is None:
        pytest.skip(reason="nginx or coturn is not installed (`make test` installs both)")
    tmp = tmp_path_factory.mktemp("topology")
    variables = {
        "CALLSITE_HOST": HOST,
        "SECRET_KEY": "compose-" + "s" * 50,
        "POSTGRES_PASSWORD": "unused-here",
        "TURN_SECRET": "turn-" + uuid.uuid4().hex,
        "METRICS_TOKEN": "metrics-" + uuid.uuid4().hex,
    }
    services = kit.compose_services(variables)
    prefix = f"callsite-topology-{uuid.uuid4().hex[:8]}"
    with postgres_database(os.environ["DATABASE_URL"]) as database_url:
        procs = Processes(base_env(), tmp)
        try:
            envs = {n: env_of(services[n], database_url, prefix, tmp / "var") for n in APP_SERVICES}
            # One-shot services first, as compose's depends_on orders them.
            for name in ("migrate", "collectstatic"):
                procs.start(name, argv_of(services[name]), env=envs[name])
                assert procs.wait(name, 120) == 0, procs.log(name)
                procs.procs.pop(name)
            (tmp / "shell").mkdir()
            shell = Processes(envs["server1"], tmp / "shell")
            tokens = create_users(shell, ["alice", "bob", "carol", "dave"])
            https, http, turn = free_port(), free_port(), kit.free_turn_port()
            topo = Topology(procs, https, http, turn, tokens)
            topo.metrics_token = variables["METRICS_TOKEN"]
            for name in ("server1", "server2"):
                topo.server_ports[name] = free_port()
                procs.start(name, argv_of(services[name], topo.server_ports[name]), envs[name])
            procs.start("timers", argv_of(services["timers"]), envs["timers"])
            for name, port in topo.server_ports.items():
                wait_listening(port, alive=procs.procs[name])
            main = kit.nginx_site(
                tmp / "nginx",
                upstream="compose/nginx-upstream.conf",
                servers={f"{n}:8000": p for n, p in topo.server_ports.items()},
                http_port=http,
                https_port=https,
                static_root=tmp / "var" / "static",
            )
            nginx = kit.binary("nginx") or "nginx"
            procs.start("nginx", [nginx, "-c", str(main), "-p", str(main.parent)])
            wait_listening(https, alive=procs.procs["nginx"])
            coturn_args = [a for a in services["coturn"]["command"] if a.startswith("--")]
            start_coturn(procs, tmp, turn, coturn_args)
            yield topo
        finally:
            procs.stop_all()
            flush_redis_prefix(prefix)


def wss_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def device(topo: Topology, user: str, device_id: str) -> Any:
    url = f"wss://{HOST}:{topo.https}/ws/?token={topo.tokens[user]}&device_id={device_id}"
    ws = await websockets.connect(url, ssl=wss_context())
    ready = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert ready["type"] == "session.ready"
    return ws


async def next_event(ws: Any, kind: str, timeout: float = 8) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, end - time.monotonic())))
        if event["type"] == kind:
            return event


def test_the_compose_topology_is_ready_behind_nginx(topology: Topology) -> None:
    with topology.client() as client:
        assert client.get("/healthz").status_code == 200
        end = time.monotonic() + 20
        while (ready := client.get("/readyz")).status_code != 200:  # the worker's first beat
            assert time.monotonic() < end, ready.text
            time.sleep(0.3)
        assert ready.json()["checks"] == {"database": "ok", "channel_layer": "ok", "timers": "ok"}
        # Plain HTTP is sent to HTTPS.
        plain = httpx.get(f"http://{HOST}:{topology.http}/api/me/", follow_redirects=False)
        assert plain.status_code == 301
        assert plain.headers["location"] == f"https://{HOST}/api/me/"


def test_nginx_serves_static_files_limits_bodies_and_hides_metrics(topology: Topology) -> None:
    with topology.client("alice") as client:
        static = client.get("/static/js/app.js")
        assert static.status_code == 200
        assert static.headers["server"].startswith("nginx")  # not Daphne
        assert static.content == (ROOT / "static" / "js" / "app.js").read_bytes()
        big = client.post("/api/calls/", content=b'{"invitees": ["bob"], "x": "' + b"x" * 70000)
        assert big.status_code == 413
        assert client.get("/metrics").status_code == 404
        # Requests reach the app with nginx's request id (X-Request-ID).
        me = client.get("/api/me/")
        assert me.status_code == 200 and len(me.headers["x-request-id"]) == 32
    logs = topology.procs.log("server1") + topology.procs.log("server2")
    assert me.headers["x-request-id"] in logs
    # Each process serves its own metrics, to a scraper holding compose's METRICS_TOKEN.
    for port in topology.server_ports.values():
        bearer = {"Authorization": f"Bearer {topology.metrics_token}"}
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=bearer)
        assert metrics.status_code == 200 and "callsite_http_requests_total" in metrics.text


def http_as(topo: Topology, user: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Token {topo.tokens[user]}"}
    return httpx.AsyncClient(base_url=topo.base, verify=False, timeout=10, headers=headers)


async def a_call_through_nginx(topo: Topology) -> None:
    alice = await device(topo, "alice", "alice-web")
    bob = await device(topo, "bob", "bob-phone")
    dave = await device(topo, "dave", "dave-web")
    alice_http, bob_http, carol_http = (http_as(topo, u) for u in ("alice", "bob", "carol"))
    try:
        created = await alice_http.post("/api/calls/", json={"invitees": ["bob"]})
        assert created.status_code == 201, created.text
        call_id = created.json()["call"]["id"]
        assert (await next_event(bob, "call.invitation_received"))["call_id"] == call_id
        accepted = await bob_http.post(f"/api/calls/{call_id}/accept/", json={})
        assert accepted.status_code == 200, accepted.text
        changed = await next_event(alice, "call.user_state_changed")
        while changed["state"] != "accepted":
            changed = await next_event(alice, "call.user_state_changed")
        # The timer worker: carol's invitation of 1 s to dave times out.
        ringing = await carol_http.post("/api/calls/", json={"invitees": ["dave"], "timeout": 1})
        assert ringing.status_code == 201, ringing.text
        await next_event(dave, "call.invitation_received")
        timed_out = await next_event(dave, "call.invitation_timeout")
        assert timed_out["call_id"] == ringing.json()["call"]["id"]
        # TURN: the credentials the app hands out get a relay from coturn.
        ice = (await alice_http.get("/api/rtc/ice-servers/")).json()["ice_servers"]
        turn = next(s for s in ice if any(u.startswith("turn:") for u in s["urls"]))
        relayed = await kit.turn_allocate(topo.turn, turn["username"], turn["credential"])
        assert relayed[0] == "127.0.0.1"
        assert (await alice_http.post(f"/api/calls/{call_id}/end/", json={})).status_code == 200
        assert (await next_event(bob, "call.ended"))["call_id"] == call_id
    finally:
        for ws in (alice, bob, dave):
            await ws.close()
        for client in (alice_http, bob_http, carol_http):
            await client.aclose()


def test_a_call_through_nginx_with_the_timer_worker_and_turn(topology: Topology) -> None:
    asyncio.run(a_call_through_nginx(topology))
