"""Web Push from end to end, on 127.0.0.1: the real server (VAPID configured) pushes a ring and
its stop to a local Web Push service, which checks the VAPID JWT and decrypts the aes128gcm body
(tests/push/fixtures/webpush.py); what it decrypted is handed to the real service worker in
Chromium through the DevTools protocol, which shows and then closes the notification.

Only one link is missing from the real chain: headless Chromium has no push service, so the
subscription is one the fixture made, registered over REST, and the fixture's payload reaches
the worker through DevTools instead of through Google's servers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Server, running_server
from .test_push_sw import API, PushTarget

pytestmark = pytest.mark.browser

webpush_fixture = pytest.importorskip(
    "tests.push.fixtures.webpush", reason="the Web Push fixture comes with the push senders"
)
pytest.importorskip("invitations.push.senders.webpush", reason="needs the Web Push sender")
pytest.importorskip(
    "invitations.push.delivery", reason="needs the push devices and the delivery worker"
)


@pytest.fixture(scope="module")
def webpush_service() -> Iterator[Any]:
    service = webpush_fixture.WebPushService(webpush_fixture.VapidKeys.generate()).start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def server(webpush_service: Any) -> Iterator[Server]:
    """This module's own server: the package's has no push configured."""
    vapid = webpush_service.vapid
    env = {
        "WEBPUSH_VAPID_PRIVATE_KEY": vapid.private_raw,
        "WEBPUSH_VAPID_PUBLIC_KEY": vapid.public_b64,
        "WEBPUSH_VAPID_SUBJECT": "mailto:ops@callsite.test",
        "WEBPUSH_ENDPOINT_HOSTS": "127.0.0.1",
    }
    with running_server(env) as srv:
        yield srv


def test_the_servers_ring_and_stop_reach_the_service_worker(
    open_as: Callable[..., Any], server: Server, team: dict[str, str], webpush_service: Any
) -> None:
    bob = open_as(team["bob"], permissions=("notifications",))
    # The switch reads the real config (with its VAPID key); headless Chromium then cannot
    # subscribe, and says so. The worker is registered all the same.
    bob.get_by_test_id("push-toggle").click()
    expect(bob.get_by_test_id("push-status")).to_have_attribute("data-status", "failed")
    target = PushTarget(bob, server)

    # A device of bob's with no socket (his closed laptop), subscribed at the local service.
    subscription = webpush_service.subscribe()
    made = bob.evaluate(
        API,
        [
            "POST",
            "push/devices/",
            {"device_id": "bob-closed-laptop", "provider": "webpush", "subscription": subscription},
        ],
    )
    assert made["status"] == 201, made

    alice = open_as(team["alice"])
    started = alice.evaluate(API, ["POST", "calls/", {"invitees": [team["bob"]], "type": "video"}])
    assert started["status"] == 201, started
    call_id = started["body"]["call"]["id"]

    ring = webpush_service.wait_for(1)[0]
    assert not ring.problems, ring.problems
    assert ring.payload["type"] == "call.ring"
    assert ring.payload["call_id"] == call_id
    assert ring.headers["urgency"] == "high"
    assert 0 < int(ring.headers["ttl"]) <= 12  # the suite's ring timeout
    shown = target.push(json.dumps(ring.payload), call_id, 1)
    assert len(shown) == 1, shown
    number = team["alice"].removeprefix("alice")
    assert shown[0]["title"] == f"Alice T{number}"
    assert shown[0]["body"] == "Incoming video call"

    cancelled = alice.evaluate(API, ["POST", f"calls/{call_id}/cancel/", {}])
    assert cancelled["status"] == 200, cancelled
    stop = webpush_service.wait_for(2)[1]
    assert not stop.problems, stop.problems
    assert (stop.payload["type"], stop.payload["reason"]) == ("call.ring_stopped", "cancelled")
    assert stop.headers["topic"] == ring.headers["topic"]
    missed = target.push(json.dumps(stop.payload), f"missed-{call_id}", 1)
    assert [n["body"] for n in missed] == ["Missed video call"]
    assert target.notifications(call_id) == []
