"""GET /healthz and GET /readyz (issue 11, "Health").

/healthz: the process is alive; it touches no database. /readyz: the database, a channel-layer
round trip and a recent timer-worker heartbeat, each answering within 1 s; otherwise 503 with
the failing part named, and a warning in the log that says why. Neither is throttled nor logged
at INFO.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from django.core.cache import cache
from django.test import AsyncClient, override_settings

from callsite import health, heartbeat
from tests.processes import Processes, base_env, free_port, wait_listening

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    sock.close()


@pytest.fixture(autouse=True)
def _forget_last_warning() -> None:
    """Each test starts as if its process had not warned yet (warnings are rate-limited)."""
    health._last_warning.update(failing=(), at=0.0)


@pytest.fixture
def fresh_heartbeat() -> Iterator[None]:
    heartbeat.beat()
    yield
    cache.delete(heartbeat.KEY)


def redis_layer_at(port: int) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "callsite.channel_layers.CountingRedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"], "prefix": "readyz-test"},
        }
    }


@pytest.mark.django_db(transaction=True)
async def test_ready_when_database_layer_and_a_recent_timer_worker_answer(
    fresh_heartbeat: None,
) -> None:
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "channel_layer": "ok", "timers": "ok"},
    }


@pytest.mark.django_db(transaction=True)
async def test_ready_on_the_production_pubsub_layer_and_each_probe_leaves_nothing_subscribed(
    fresh_heartbeat: None,
) -> None:
    prefix = f"readyz-test-{uuid.uuid4().hex[:8]}"
    layers = {
        "default": {
            "BACKEND": "callsite.channel_layers.CountingRedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": prefix},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        for _ in range(3):
            response = await AsyncClient().get("/readyz")
            assert response.status_code == 200, response.content
            assert response.json()["checks"]["channel_layer"] == "ok"
        # Probes every few seconds for weeks: each probe's channel is unsubscribed after it.
        assert redis.Redis.from_url(REDIS_URL).pubsub_channels(f"{prefix}*") == []
        from channels.layers import get_channel_layer

        await get_channel_layer().flush()


@pytest.mark.django_db(transaction=True)
async def test_no_timer_worker_ever_seen_is_not_ready_and_the_log_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache.delete(heartbeat.KEY)
    with caplog.at_level(logging.WARNING, logger="callsite.health"):
        response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["timers"]
    assert (body["checks"]["database"], body["checks"]["channel_layer"]) == ("ok", "ok")
    assert "runworker call-timers" in body["checks"]["timers"]
    assert any("timers" in r.getMessage() and "runworker" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db(transaction=True)
@override_settings(CALLSITE={"TIMER_RESCAN_SECONDS": 5})
async def test_a_heartbeat_older_than_twice_the_rescan_interval_is_stale(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a worker last seen 11 s ago, with a rescan every 5 s (stale after 10 s)
    cache.set(heartbeat.KEY, time.time() - 11, timeout=None)
    with caplog.at_level(logging.WARNING, logger="callsite.health"):
        response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["timers"]
    assert "no timer worker seen for 11 s (limit 10 s" in response.json()["checks"]["timers"]
    assert any("no timer worker seen for 11 s" in r.getMessage() for r in caplog.records)
    # And 9 s ago is recent enough
    cache.set(heartbeat.KEY, time.time() - 9, timeout=None)
    assert (await AsyncClient().get("/readyz")).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_a_channel_layer_that_hangs_fails_readiness_within_about_a_second(
    silent_port: int, fresh_heartbeat: None
) -> None:
    with override_settings(CHANNEL_LAYERS=redis_layer_at(silent_port)):
        started = time.monotonic()
        response = await AsyncClient().get("/readyz")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["failing"] == ["channel_layer"]
    assert response.json()["checks"]["channel_layer"] == "no answer within 1 s"
    assert elapsed < 2.0


@pytest.mark.django_db(transaction=True)
async def test_a_channel_layer_that_refuses_fails_readiness_naming_it(
    fresh_heartbeat: None,
) -> None:
    with override_settings(CHANNEL_LAYERS=redis_layer_at(free_port())):
        response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["channel_layer"]
    assert response.json()["checks"]["channel_layer"].startswith("failed: ")


@pytest.mark.django_db(transaction=True)
async def test_probes_are_neither_throttled_nor_logged_at_info(
    fresh_heartbeat: None, caplog: pytest.LogCaptureFixture
) -> None:
    client = AsyncClient()
    with caplog.at_level(logging.INFO):
        for _ in range(150):
            assert (await client.get("/healthz")).status_code == 200
        for _ in range(20):
            assert (await client.get("/readyz")).status_code == 200
        # The control: an ordinary request is logged at INFO.
        assert (await client.get("/api/me/")).status_code == 401
    info = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert not [r for r in info if "/healthz" in r.getMessage() or "/readyz" in r.getMessage()]
    assert [r for r in info if r.name == "callsite.access" and "/api/me/" in r.getMessage()]


def test_a_real_server_whose_database_hangs_is_alive_but_not_ready(
    tmp_path: Path, silent_port: int
) -> None:
    # Given a server whose PostgreSQL accepts connections and never answers
    port = free_port()
    env = base_env(
        DATABASE_URL=f"postgres://callsite@127.0.0.1:{silent_port}/callsite",
        CALLSITE_VAR_DIR=str(tmp_path),
    )
    procs = Processes(env, tmp_path)
    procs.start_manage("server", "serve", "--port", str(port), "--timers", "external")
    try:
        wait_listening(port, alive=procs.procs["server"])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            # Then liveness answers at once: it never waits for the database
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            assert time.monotonic() - started < 0.5
            # And readiness names the database (and the absent timer worker) within ~1 s
            started = time.monotonic()
            response = client.get("/readyz")
            assert time.monotonic() - started < 2.0
        assert response.status_code == 503
        body = response.json()
        assert body["failing"] == ["database", "timers"]
        assert body["checks"]["database"] == "no answer within 1 s"
        assert body["checks"]["channel_layer"] == "ok"
    finally:
        procs.stop_all()
    log = procs.log("server")
    assert "not ready: database: no answer within 1 s" in log
    assert "Service Unavailable" not in log  # one rate-limited warning, not an error per probe
