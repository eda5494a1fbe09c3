"""Web Push in Chromium: the real service worker, registered by the home page's switch, receives
payloads through the DevTools protocol (``ServiceWorker.deliverPushMessage``) and shows, closes or
drops the ring notification (TESTING.md, "Push without the internet"). No push service is
reachable here, so the switch itself ends on a message, not on "on".
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Server, shot

pytestmark = pytest.mark.browser

NOTIFICATIONS = """async (tag) => {
  const registration = await navigator.serviceWorker.ready;
  return (await registration.getNotifications(tag ? {tag} : {})).map((n) => ({
    title: n.title, body: n.body, tag: n.tag, requireInteraction: n.requireInteraction,
    actions: n.actions.map((a) => [a.action, a.title]), data: n.data,
  }));
}"""

API = """async ([method, path, body]) => {
  const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const r = await fetch("/api/" + path, {method, credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRFToken": token},
    body: body === null ? undefined : JSON.stringify(body)});
  return {status: r.status, body: await r.json()};
}"""


def payload(call_id: str, kind: str = "call.ring", *, seconds: float = 60, **extra: Any) -> str:
    deadline = datetime.now(UTC) + timedelta(seconds=seconds)
    return json.dumps(
        {
            "v": 1,
            "type": kind,
            "call_id": call_id,
            "inviter": {"username": "alice1", "display_name": "Alice T1"},
            "call_type": "video",
            "deadline": deadline.isoformat(),
            **extra,
        }
    )


class PushTarget:
    """The page's service worker, reached through the DevTools protocol."""

    def __init__(self, page: Any, server: Server) -> None:
        self.page = page
        self.origin = server.url
        self.cdp = page.context.new_cdp_session(page)
        self.registrations: dict[str, dict[str, Any]] = {}
        self.cdp.on("ServiceWorker.workerRegistrationUpdated", self._updated)
        self.cdp.send("ServiceWorker.enable")
        self.registration_id = self._wait_for_registration()

    def _updated(self, event: dict[str, Any]) -> None:
        for reg in event["registrations"]:
            self.registrations[reg["registrationId"]] = reg

    def _wait_for_registration(self) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for rid, reg in self.registrations.items():
                if reg["scopeURL"] == self.origin + "/" and not reg.get("isDeleted"):
                    return rid
            self.page.wait_for_timeout(100)  # lets Playwright dispatch the CDP events
        raise AssertionError(f"no service worker registration for {self.origin}/")

    def deliver(self, data: str) -> None:
        self.cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": self.origin, "registrationId": self.registration_id, "data": data},
        )

    def push(self, data: str, tag: str, count: int) -> list[dict[str, Any]]:
        """Deliver a push and wait until ``tag`` has ``count`` notifications. Headless Chromium
        now and then drops a DevTools push (about one in fifty here, the first one included),
        so a push without its effect after 5 s goes once more; pushes here are idempotent."""
        self.deliver(data)
        shown = self.wait_for(tag, count, timeout=5)
        if len(shown) != count:
            self.deliver(data)
            shown = self.wait_for(tag, count)
        return shown

    def handle(self, data: str) -> str:
        """Run the worker's push handler on ``data`` inside the real worker, and return what it
        did: for pushes whose effect is that nothing shows, the DevTools route cannot tell a
        dropped push from a handled one."""
        (worker,) = self.page.context.service_workers
        return str(
            worker.evaluate("(d) => self.callsitePush.handlePush(self, d, Date.now())", data)
        )

    def notifications(self, tag: str | None = None) -> list[dict[str, Any]]:
        return list(self.page.evaluate(NOTIFICATIONS, tag))

    def wait_for(self, tag: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.notifications(tag)
            if len(shown) == count or time.monotonic() > deadline:
                return shown
            self.page.wait_for_timeout(100)


def push_ready(open_as: Callable[..., Any], server: Server, username: str) -> PushTarget:
    """Sign in, allow notifications, and turn push on with the home page's switch."""
    page = open_as(username, permissions=("notifications",))
    toggle = page.get_by_test_id("push-toggle")
    status = page.get_by_test_id("push-status")
    expect(status).to_have_attribute("data-status", "off")
    toggle.click()
    # This server has no VAPID key (and no push service answers here anyway): a clear message,
    # and the service worker stays registered for the page's own ring notifications.
    expect(status).to_have_attribute("data-status", "not_configured")
    expect(status).to_contain_text("not configured")
    expect(toggle).to_have_attribute("aria-checked", "false")
    assert page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.scriptURL)") == (
        server.url + "/sw.js"
    )
    return PushTarget(page, server)


def test_a_pushed_ring_shows_as_a_notification_and_its_stop_closes_it(
    open_as: Callable[..., Any], server: Server, team: dict[str, str]
) -> None:
    target = push_ready(open_as, server, team["bob"])
    call_id = str(uuid.uuid4())

    shown = target.push(payload(call_id), call_id, 1)
    assert len(shown) == 1, shown
    ring = shown[0]
    assert ring["title"] == "Alice T1"
    assert ring["body"] == "Incoming video call"
    assert ring["tag"] == call_id
    assert ring["requireInteraction"] is True
    assert ring["actions"] == [["answer", "Answer"], ["decline", "Decline"]]
    assert ring["data"]["url"] == f"/calls/{call_id}/"
    shot(target.page, "push-ring-page")

    # The same ring again (the fallback push after the grace) replaces it: still one.
    assert target.handle(payload(call_id)) == "ring"
    assert len(target.notifications(call_id)) == 1

    assert (
        target.push(payload(call_id, "call.ring_stopped", reason="answered_elsewhere"), call_id, 0)
        == []
    )
    assert target.notifications(None) == []

    # A call the person missed leaves a quiet notification in place of the ring.
    missed_id = str(uuid.uuid4())
    assert len(target.push(payload(missed_id), missed_id, 1)) == 1
    stop = payload(missed_id, "call.ring_stopped", reason="timeout")
    missed = target.push(stop, f"missed-{missed_id}", 1)
    assert target.notifications(missed_id) == []
    assert [(n["title"], n["body"], n["requireInteraction"]) for n in missed] == [
        ("Alice T1", "Missed video call", False)
    ]


def test_a_ring_past_its_deadline_shows_nothing(
    open_as: Callable[..., Any], server: Server, team: dict[str, str]
) -> None:
    target = push_ready(open_as, server, team["bob"])
    expired, fresh = str(uuid.uuid4()), str(uuid.uuid4())

    # Through the push event, then a ring behind it...
    target.deliver(payload(expired, seconds=-1))
    assert len(target.push(payload(fresh), fresh, 1)) == 1
    target.page.wait_for_timeout(300)
    assert target.notifications(expired) == []
    assert [n["tag"] for n in target.notifications(None)] == [fresh]
    # ...and straight into the worker's handler, which says what it did.
    assert target.handle(payload(expired, seconds=-1)) == "expired"
    assert target.notifications(expired) == []

    # Garbage and other versions are ignored, without an exception in the worker.
    for junk in ("not json", json.dumps({"v": 2, "type": "call.ring", "call_id": "x"})):
        target.deliver(junk)
        assert target.handle(junk) == "ignored"
    target.page.wait_for_timeout(300)
    assert [n["tag"] for n in target.notifications(None)] == [fresh]


def test_decline_from_the_worker_rejects_the_real_call_with_the_session(
    open_as: Callable[..., Any], server: Server, team: dict[str, str]
) -> None:
    target = push_ready(open_as, server, team["bob"])
    alice = open_as(team["alice"])
    made = alice.evaluate(API, ["POST", "calls/", {"invitees": [team["bob"]], "type": "audio"}])
    assert made["status"] == 201, made
    call_id = made["body"]["call"]["id"]
    assert len(target.push(payload(call_id), call_id, 1)) == 1

    # What the "Decline" action runs: a CSRF token from /csrf-token/, then the REST reject.
    (worker,) = target.page.context.service_workers
    outcome = worker.evaluate("(id) => self.callsitePush.decline(self, id)", call_id)
    assert outcome == "declined"
    call = alice.evaluate(API, ["GET", f"calls/{call_id}/", None])["body"]
    bob = next(p for p in call["participants"] if p["user"] == team["bob"])
    assert (bob["state"], bob["reason"]) == ("rejected", "declined")
    assert call["state"] == "ended"
    # The page's own dialog stops ringing too (it heard the reject on its socket).
    expect(target.page.get_by_test_id("incoming-dialog")).not_to_be_visible()


def test_answer_from_the_notification_accepts_on_the_page(
    open_as: Callable[..., Any], server: Server, team: dict[str, str]
) -> None:
    target = push_ready(open_as, server, team["bob"])
    alice = open_as(team["alice"])
    made = alice.evaluate(API, ["POST", "calls/", {"invitees": [team["bob"]], "type": "audio"}])
    assert made["status"] == 201, made
    call_id = made["body"]["call"]["id"]
    expect(target.page.get_by_test_id("incoming-dialog")).to_be_visible()

    # "Answer" ends with the worker's message to the call's page (opening and focusing a window
    # need the real click on the notification, which DevTools cannot make).
    (worker,) = target.page.context.service_workers
    worker.evaluate(
        """async (id) => {
          const [client] = await self.clients.matchAll({type: "window", includeUncontrolled: true});
          client.postMessage({type: "callsite.answer", call_id: id});
        }""",
        call_id,
    )
    target.page.wait_for_url(f"{server.url}/calls/{call_id}/")
    expect(target.page.get_by_test_id("calling-page")).to_be_visible()
    call = alice.evaluate(API, ["GET", f"calls/{call_id}/", None])["body"]
    bob = next(p for p in call["participants"] if p["user"] == team["bob"])
    assert bob["state"] == "accepted"


def test_a_subscribe_the_push_service_refuses_is_a_message(
    open_as: Callable[..., Any], server: Server, team: dict[str, str]
) -> None:
    """With Web Push configured (the config answer below carries a real P-256 public key),
    headless Chromium still has no push service to subscribe with: the switch says so."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    key = base64.urlsafe_b64encode(point).rstrip(b"=").decode()
    page = open_as(team["bob"], permissions=("notifications",))
    # The server part of push is another branch's; its answer is played here, in the browser.
    page.route(
        "**/api/push/config/",
        lambda route: route.fulfill(
            json={"providers": ["webpush"], "webpush": {"vapid_public_key": key}}
        ),
    )
    page.evaluate("window.callsite.push.subscribeTimeoutMs = 5000")
    page.get_by_test_id("push-toggle").click()
    status = page.get_by_test_id("push-status")
    expect(status).to_have_attribute("data-status", "failed")
    expect(status).to_contain_text("could not subscribe to its push service")
    expect(page.get_by_test_id("push-toggle")).to_have_attribute("aria-checked", "false")
    assert not [m for m in page.console_messages if m.startswith("pageerror")]
    print("subscribe failure as shown:", status.text_content())


def test_the_page_and_a_push_of_the_same_call_show_one_notification(
    open_as: Callable[..., Any], server: Server, team: dict[str, str]
) -> None:
    """A hidden tab rings through the worker with the call id as tag, so the fallback push of the
    same call replaces its notification instead of adding one; cancelling closes it."""
    target = push_ready(open_as, server, team["bob"])
    # Headless pages are never hidden; the incoming dialog notifies only hidden tabs.
    target.page.evaluate(
        "Object.defineProperty(Document.prototype, 'hidden', {get: () => true, configurable: true})"
    )
    alice = open_as(team["alice"])
    made = alice.evaluate(API, ["POST", "calls/", {"invitees": [team["bob"]], "type": "video"}])
    assert made["status"] == 201, made
    call_id = made["body"]["call"]["id"]
    shown = target.wait_for(call_id, 1)
    alice_name = f"Alice T{team['alice'].removeprefix('alice')} (@{team['alice']})"
    assert [(n["title"], n["body"]) for n in shown] == [(alice_name, "Incoming video call")], shown
    assert shown[0]["actions"] == [["answer", "Answer"], ["decline", "Decline"]]

    target.deliver(payload(call_id))
    assert target.handle(payload(call_id)) == "ring"
    target.page.wait_for_timeout(300)
    assert len(target.notifications(call_id)) == 1

    cancelled = alice.evaluate(API, ["POST", f"calls/{call_id}/cancel/", {}])
    assert cancelled["status"] == 200, cancelled
    assert target.wait_for(call_id, 0) == []


def test_signing_out_removes_the_browsers_push_device_first(
    open_as: Callable[..., Any], server: Server, team: dict[str, str]
) -> None:
    page = open_as(team["bob"], permissions=("notifications",))
    # As left by a successful "on" (which headless Chromium cannot reach: no push service).
    page.evaluate(
        """localStorage.setItem("callsite.push", JSON.stringify(
             {id: 4242, device_id: window.callsite.deviceId, endpoint: "https://push.example/x"}))"""
    )
    deletes: list[str] = []
    page.on(
        "request",
        lambda r: deletes.append(r.url) if r.method == "DELETE" else None,
    )
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/**")
    assert deletes == [server.url + "/api/push/devices/4242/"]
    assert page.evaluate("localStorage.getItem('callsite.push')") is None
