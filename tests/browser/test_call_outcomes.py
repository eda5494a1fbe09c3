"""Calls that do not connect, driven through the UI: decline, cancel, no answer, busy."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import RING_SECONDS, shot

pytestmark = pytest.mark.browser


def _call(caller: Any, callee: str, kind: str = "video") -> None:
    caller.get_by_test_id(f"call-{kind}-{callee}").click()
    expect(caller.get_by_test_id("waiting-page")).to_be_visible()


def test_decline_tells_the_caller(team: dict, open_as: Any) -> None:
    alice, bob = team["alice"], team["bob"]
    a, b = open_as(alice), open_as(bob)
    _call(a, bob, "audio")
    expect(b.get_by_test_id("incoming-dialog")).to_contain_text("voice")
    b.get_by_test_id("incoming-decline").click()
    expect(b.get_by_test_id("incoming-dialog")).to_be_hidden()

    expect(a.get_by_test_id(f"callee-state-{bob}")).to_have_text("declined")
    expect(a.locator("#waiting-failure")).to_contain_text("declined")
    expect(a.get_by_test_id("waiting-cancel")).to_be_hidden()
    expect(a.get_by_test_id("back-home")).to_be_visible()
    shot(a, "10-waiting-declined")
    a.get_by_test_id("back-home").click()
    expect(a.get_by_test_id(f"person-{bob}")).to_be_visible()


# Headless Chromium has no visible/hidden tabs nor a notification UI: make this tab report itself
# hidden and record the notifications the page creates.
HIDDEN_TAB_WITH_NOTIFICATIONS = """
Object.defineProperty(Document.prototype, "hidden", {get: () => true, configurable: true});
window.__notifications = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) {
    this.title = title; this.body = options.body; this.closed = false;
    window.__notifications.push(this);
  }
  close() { this.closed = true; }
};
"""


def test_cancel_stops_the_ringing(team: dict, open_as: Any) -> None:
    alice, bob = team["alice"], team["bob"]
    a, b = open_as(alice), open_as(bob, init_script=HIDDEN_TAB_WITH_NOTIFICATIONS)
    _call(a, bob)
    expect(b.get_by_test_id("incoming-dialog")).to_be_visible()
    assert b.evaluate("window.callsite.incoming.ringtone.playing") is True
    # The tab is in the background: a notification names the caller.
    note = b.evaluate("window.__notifications.map((n) => [n.title, n.body, n.closed])")
    assert note == [["Incoming video call", note[0][1], False]]
    assert alice in note[0][1]
    a.get_by_test_id("waiting-cancel").click()
    a.wait_for_url("**/")
    expect(b.get_by_test_id("incoming-dialog")).to_be_hidden()
    assert b.evaluate("window.callsite.incoming.ringtone.playing") is False
    assert b.evaluate("window.__notifications[0].closed") is True
    # A cancelled invitation is a missed call for bob, counted live in the header.
    expect(b.get_by_test_id("missed-count")).to_have_text("1")


def test_no_answer_times_out_and_counts_as_missed(team: dict, open_as: Any) -> None:
    alice, bob = team["alice"], team["bob"]
    a, b = open_as(alice), open_as(bob)
    _call(a, bob)
    expect(b.get_by_test_id("incoming-dialog")).to_be_visible()
    expect(a.get_by_test_id(f"callee-state-{bob}")).to_have_text("ringing")

    timeout = (RING_SECONDS + 5) * 1000
    expect(a.get_by_test_id(f"callee-state-{bob}")).to_have_text("no answer", timeout=timeout)
    expect(a.locator("#waiting-failure")).to_contain_text("did not answer")
    expect(b.get_by_test_id("incoming-dialog")).to_be_hidden()
    shot(a, "11-waiting-no-answer")

    # Bob's home lists the missed call, marked and counted as unseen until he marks it seen.
    b.reload()
    expect(b.get_by_test_id("missed-count")).to_have_text("1")
    expect(b.locator(".recent-call.is-missed.is-unseen")).to_have_count(1)
    shot(b, "12-home-missed-call")
    b.get_by_test_id("mark-missed-seen").click()
    expect(b.get_by_test_id("missed-count")).to_be_hidden()
    expect(b.locator(".recent-call.is-missed")).to_have_count(1)
    expect(b.locator(".recent-call.is-unseen")).to_have_count(0)


def test_busy_callee_is_reported_at_once(team: dict, open_as: Any) -> None:
    alice, bob, carol = team["alice"], team["bob"], team["carol"]
    a, b, c = open_as(alice), open_as(bob), open_as(carol)
    _call(a, bob)
    b.get_by_test_id("incoming-accept").click()
    expect(b.get_by_test_id("calling-page")).to_be_visible()
    expect(a.get_by_test_id("calling-page")).to_be_visible()

    # Someone outside a call cannot open its page: 404, as for a call that does not exist.
    call_url = a.url
    outsider = c.context.new_page()
    assert outsider.goto(call_url).status == 404
    outsider.close()

    _call(c, bob)
    expect(c.get_by_test_id(f"callee-state-{bob}")).to_have_text("busy")
    expect(c.locator("#waiting-failure")).to_contain_text("busy")
    shot(c, "13-waiting-busy")
    # Bob, busy in his call, never rang.
    expect(b.get_by_test_id("incoming-dialog")).to_be_hidden()
    expect(b.get_by_test_id("calling-page")).to_be_visible()

    # And a caller who is already in a call cannot start another one.
    b.goto("/")
    b.get_by_test_id(f"call-video-{carol}").click()
    expect(b.locator("#waiting-failure")).to_contain_text("already in a call")
    expect(c.get_by_test_id("incoming-dialog")).to_be_hidden()
    b.go_back()
    b.go_back()
    expect(b.get_by_test_id("calling-page")).to_be_visible()
    b.get_by_test_id("end-for-all").click()
    expect(a.get_by_test_id("call-ended")).to_contain_text("ended the call for everyone")
