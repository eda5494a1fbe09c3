"""A 1:1 video call through the UI, proven by decoded media on both sides."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import shot
from .media import media_stats, wait_for_media

pytestmark = pytest.mark.browser


def test_video_call_connects_both_ways_and_hang_up_ends_it(team: dict, open_as: Any) -> None:
    alice, bob = team["alice"], team["bob"]
    a = open_as(alice)
    b = open_as(bob)
    expect(a.get_by_test_id(f"person-{bob}")).to_be_visible()
    expect(a.get_by_test_id(f"person-{bob}")).to_have_attribute("data-online", "true")
    shot(a, "01-home")

    a.get_by_test_id(f"call-video-{bob}").click()
    expect(a.get_by_test_id("waiting-page")).to_be_visible()

    dialog = b.get_by_test_id("incoming-dialog")
    expect(dialog).to_be_visible()
    expect(b.get_by_test_id("incoming-caller")).to_contain_text(alice)
    expect(dialog).to_contain_text("video")
    # The dialog acknowledged the invitation: the caller sees bob's phone ringing.
    expect(a.get_by_test_id(f"callee-state-{bob}")).to_have_text("ringing")
    shot(a, "02-waiting-ringing")
    shot(b, "03-incoming-dialog")

    b.get_by_test_id("incoming-accept").click()
    expect(b.get_by_test_id("calling-page")).to_be_visible()
    expect(a.get_by_test_id("calling-page")).to_be_visible()
    expect(a.get_by_test_id("waiting-page")).to_be_hidden()

    a_stats = wait_for_media(a, bob, video=True)
    b_stats = wait_for_media(b, alice, video=True)
    assert a_stats["video"]["framesDecoded"] > 0 and b_stats["video"]["framesDecoded"] > 0
    expect(a.get_by_test_id(f"state-{bob}")).to_have_text("joined")
    expect(b.get_by_test_id(f"state-{alice}")).to_have_text("joined")
    expect(a.get_by_test_id("video-local")).to_be_visible()
    expect(a.get_by_test_id(f"video-{bob}")).to_be_visible()
    # The remote <video> element really plays bob's camera.
    a.wait_for_function(
        "(id) => { const v = document.querySelector(`[data-testid=video-${id}]`);"
        " return v && v.videoWidth > 0 && !v.paused; }",
        arg=bob,
    )
    # Let a second of video in so the screenshot shows frames, and the duration ticks.
    a.wait_for_timeout(1200)
    expect(a.get_by_test_id("call-duration")).not_to_have_text("0:00")
    shot(a, "04-calling-alice")
    shot(b, "05-calling-bob")

    # Mute and camera toggles are real buttons with a pressed state.
    a.get_by_test_id("toggle-mic").click()
    expect(a.get_by_test_id("toggle-mic")).to_have_attribute("aria-pressed", "true")
    assert (
        a.evaluate(
            "() => document.getElementById('video-local').srcObject.getAudioTracks()[0].enabled"
        )
        is False
    )
    a.get_by_test_id("toggle-camera").click()
    expect(a.get_by_test_id("toggle-camera")).to_have_attribute("aria-pressed", "true")
    a.get_by_test_id("toggle-mic").click()
    expect(a.get_by_test_id("toggle-mic")).to_have_attribute("aria-pressed", "false")

    # Bob hangs up: with only alice left the call ends, and alice is taken home.
    b.get_by_test_id("hangup").click()
    b.wait_for_url("**/")
    expect(a.get_by_test_id("call-ended")).to_be_visible()
    shot(a, "06-call-ended")
    a.wait_for_url(a.url.split("/calls/")[0] + "/", timeout=10000)
    assert media_stats(a, bob)["exists"] is False  # home page: no peer connections left
