"""GET /metrics (issue 11, "Metrics"): the Prometheus text format, readable only by whom the
METRICS setting allows, with HTTP, socket, channel-layer and database figures of this process.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import AsyncClient, Client, override_settings
from prometheus_client import REGISTRY

from callsite.channel_layers import CountingRedisChannelLayer
from callsite.metrics import db_connections_in_use
from invitations import tokens
from tests.processes import free_port

METRIC_NAMES = (
    "callsite_invitations_total",
    "callsite_invite_to_publish_seconds_bucket",
    "callsite_timer_lateness_seconds_bucket",
    "callsite_websockets_open",
    "callsite_websocket_messages_total",
    "callsite_channel_layer_dropped_total",
    "callsite_channel_layer_send_failures_total",
    "callsite_http_requests_total",
    "callsite_db_connections_in_use",
)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db
def test_loopback_reads_every_metric_in_the_prometheus_format() -> None:
    Client().get("/api/me/")  # at least one labelled HTTP sample
    response = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    for name in METRIC_NAMES:
        assert f"# TYPE {name.removesuffix('_total').removesuffix('_bucket')}" in text, name
    assert 'callsite_http_requests_total{method="GET",status="401",view="api-me"}' in text


@pytest.mark.django_db
def test_other_networks_and_proxied_requests_are_refused() -> None:
    assert Client(REMOTE_ADDR="203.0.113.7").get("/metrics").status_code == 403
    # Through a proxy on the same host the peer is loopback: the header gives it away.
    proxied = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert proxied.get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="127.0.0.1").post("/metrics").status_code == 405


@pytest.mark.django_db
@override_settings(METRICS={"ALLOWED_NETWORKS": ["10.1.0.0/16"], "TOKEN": "s3cret-scrape-token"})
def test_an_allowed_network_or_the_bearer_token_is_let_in() -> None:
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    remote = Client(REMOTE_ADDR="198.51.100.9")
    assert remote.get("/metrics").status_code == 403
    wrong = remote.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-tokeN")
    assert wrong.status_code == 403
    right = remote.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert right.status_code == 200


@pytest.mark.django_db
def test_http_requests_are_counted_by_view_and_status(client_for: Any) -> None:
    before_401 = sample("callsite_http_requests_total", view="api-me", method="GET", status="401")
    before_200 = sample("callsite_http_requests_total", view="api-me", method="GET", status="200")
    Client().get("/api/me/")
    client_for("alice").get("/api/me/")
    client_for("alice").get("/api/me/")
    assert (
        sample("callsite_http_requests_total", view="api-me", method="GET", status="401")
        == before_401 + 1
    )
    assert (
        sample("callsite_http_requests_total", view="api-me", method="GET", status="200")
        == before_200 + 2
    )
    Client().get("/no/such/page/")
    assert sample("callsite_http_requests_total", view="<unmatched>", method="GET", status="404")


def send_failures(operation: str) -> float:
    """Failures of one operation, whatever the error (redis-py raises one of several)."""
    return sum(
        s.value
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == "callsite_channel_layer_send_failures_total"
        and s.labels["operation"] == operation
    )


async def test_a_failed_channel_layer_send_is_counted() -> None:
    layer = CountingRedisChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}/0"])
    before = send_failures("send"), send_failures("group_send")
    with pytest.raises(Exception, match="onnect"):
        await layer.send("somewhere", {"type": "x"})
    with pytest.raises(Exception, match="onnect"):
        await layer.group_send("everyone", {"type": "x"})
    assert (send_failures("send"), send_failures("group_send")) == (before[0] + 1, before[1] + 1)


@pytest.mark.django_db(transaction=True)
def test_database_connections_in_use_follow_open_and_close() -> None:
    opened, release, closed = threading.Event(), threading.Event(), threading.Event()

    def worker() -> None:
        connections["default"].ensure_connection()
        opened.set()
        release.wait(10)
        connections["default"].close()
        closed.set()

    before = db_connections_in_use()
    thread = threading.Thread(target=worker)
    thread.start()
    assert opened.wait(10)
    assert db_connections_in_use() == before + 1
    release.set()
    assert closed.wait(10)
    assert db_connections_in_use() == before
    thread.join(10)


@pytest.mark.django_db(transaction=True)
async def test_open_sockets_and_frames_in_and_out_through_the_asgi_application(
    users: dict[str, Any],
) -> None:
    from asgiref.sync import sync_to_async

    from callsite.asgi import application

    token = await sync_to_async(lambda: tokens.issue(user=users["alice"])[0])()
    before_open = sample("callsite_websockets_open")
    before_in = sample("callsite_websocket_messages_total", direction="in")
    before_out = sample("callsite_websocket_messages_total", direction="out")
    comm = WebsocketCommunicator(application, f"/ws/?token={token}&device_id=m-1")
    connected, _ = await comm.connect()
    assert connected
    ready = json.loads(await comm.receive_from())
    assert ready["type"] == "session.ready"
    assert sample("callsite_websockets_open") == before_open + 1
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    assert json.loads(await comm.receive_from()) == {"type": "pong"}
    assert sample("callsite_websocket_messages_total", direction="in") == before_in + 1
    assert sample("callsite_websocket_messages_total", direction="out") == before_out + 2
    await comm.disconnect()
    assert sample("callsite_websockets_open") == before_open


async def test_metrics_are_not_throttled_or_blocked_by_the_http_queue() -> None:
    client = AsyncClient(REMOTE_ADDR="127.0.0.1")
    for _ in range(50):
        assert (await client.get("/metrics")).status_code == 200


# --- the figures published from invitations/ ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_invitations_are_counted_by_outcome_and_timed_to_publish(client_for: Any) -> None:
    outcomes = ("accepted", "rejected", "cancelled", "busy")
    before = {o: sample("callsite_invitations_total", outcome=o) for o in outcomes}
    published = sample("callsite_invite_to_publish_seconds_count")
    alice, bob, carol, dave = (client_for(u) for u in ("alice", "bob", "carol", "dave"))

    def invite(client: Any, *invitees: str) -> str:
        made = client.post("/api/calls/", {"invitees": list(invitees)}, format="json")
        assert made.status_code == 201, made.content
        return str(made.json()["call"]["id"])

    first = invite(alice, "bob")
    assert bob.post(f"/api/calls/{first}/accept/", {}, format="json").status_code == 200
    invite(carol, "bob")  # bob is talking: busy
    second = invite(carol, "dave")
    assert dave.post(f"/api/calls/{second}/reject/", {}, format="json").status_code == 200
    third = invite(carol, "dave")
    assert carol.post(f"/api/calls/{third}/cancel/", {}, format="json").status_code == 200

    after = {o: sample("callsite_invitations_total", outcome=o) for o in outcomes}
    assert {o: after[o] - before[o] for o in outcomes} == {o: 1 for o in outcomes}
    # Three invitations rang (the busy one never did), each timed from its request's start.
    assert sample("callsite_invite_to_publish_seconds_count") == published + 3


@pytest.mark.django_db(transaction=True)
async def test_a_timeout_is_counted_with_its_lateness(users: dict[str, Any]) -> None:
    from channels.db import database_sync_to_async

    from invitations import services
    from tests.realtime.support import timer_worker

    timeouts = sample("callsite_invitations_total", outcome="timeout")
    late = sample("callsite_timer_lateness_seconds_count")
    async with timer_worker():
        await database_sync_to_async(services.invite)(
            inviter=users["alice"], invitees=["bob"], timeout=1
        )
        for _ in range(60):
            if sample("callsite_invitations_total", outcome="timeout") > timeouts:
                break
            await asyncio.sleep(0.1)
    assert sample("callsite_invitations_total", outcome="timeout") == timeouts + 1
    assert sample("callsite_timer_lateness_seconds_count") == late + 1
    assert sample("callsite_timer_lateness_seconds_sum") < 5
