"""Several devices of one user, and a call that survives a lost socket, an ICE restart and a
reload of the page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import shot
from .media import media_stats, wait_for_media

pytestmark = pytest.mark.browser

UFRAG_JS = """(remote) => {
  const pc = window.callsite.peers.get(remote).pc;
  const m = /a=ice-ufrag:(\\S+)/.exec(pc.currentRemoteDescription.sdp);
  return m && m[1];
}"""


def test_answered_on_another_device_stops_the_other_one(team: dict, open_as: Any) -> None:
    alice, bob = team["alice"], team["bob"]
    a = open_as(alice)
    laptop = open_as(bob)
    phone = open_as(bob, viewport={"width": 390, "height": 760})
    a.get_by_test_id(f"call-video-{bob}").click()
    expect(laptop.get_by_test_id("incoming-dialog")).to_be_visible()
    expect(phone.get_by_test_id("incoming-dialog")).to_be_visible()
    shot(phone, "30-incoming-phone-sized")

    phone.get_by_test_id("incoming-accept").click()
    expect(laptop.get_by_test_id("incoming-dialog")).to_be_hidden()
    expect(laptop.locator("#toasts")).to_contain_text("Answered on another device")
    assert laptop.evaluate("window.callsite.incoming.ringtone.playing") is False
    assert laptop.url.endswith("/")  # the laptop stays where it was

    # Signals go to the device that accepted: media flows between alice and bob's phone.
    wait_for_media(a, bob)
    wait_for_media(phone, alice)
    phone.wait_for_timeout(800)
    shot(phone, "31-calling-phone-sized")
    phone.get_by_test_id("end-for-all").click()
    expect(a.get_by_test_id("call-ended")).to_be_visible()


def test_call_survives_socket_loss_ice_restart_and_reload(team: dict, open_as: Any) -> None:
    alice, bob = team["alice"], team["bob"]
    a, b = open_as(alice), open_as(bob)
    a.get_by_test_id(f"call-audio-{bob}").click()
    b.get_by_test_id("incoming-accept").click()
    wait_for_media(a, bob, video=False)
    wait_for_media(b, alice, video=False)
    # Audio calls show avatars, not video.
    expect(a.locator(f"#tile-{bob} .avatar-big")).to_be_visible()
    shot(a, "32-calling-audio-avatars")

    # The socket drops: the page reconnects, resyncs from session.ready, keeps its connection.
    before = media_stats(a, bob)["audio"]["bytesReceived"]
    a.evaluate("window.callsite.socket.drop()")
    expect(a.locator("#connection-status")).to_have_attribute("data-state", "open")
    assert a.evaluate(f"window.callsite.peers.get('{bob}').pc.connectionState") == "connected"
    a.wait_for_timeout(500)
    assert media_stats(a, bob)["audio"]["bytesReceived"] > before

    # An ICE restart renegotiates new ICE credentials over the (new) socket.
    old_ufrag = b.evaluate(UFRAG_JS, alice)
    a.evaluate(f"window.callsite.peers.get('{bob}').restartIce()")
    b.wait_for_function(
        "([remote, old]) => { const pc = window.callsite.peers.get(remote).pc;"
        " return !pc.currentRemoteDescription.sdp.includes('a=ice-ufrag:' + old); }",
        arg=[alice, old_ufrag],
    )
    wait_for_media(b, alice, video=False)

    # Bob reloads the page: a fresh peer connection replaces the old one on both sides.
    old_pc_id = a.evaluate(f"window.callsite.peers.get('{bob}').pc.__marker = 'old'")
    assert old_pc_id == "old"
    b.reload()
    expect(b.get_by_test_id("calling-page")).to_be_visible()
    wait_for_media(b, alice, video=False)
    a.wait_for_function(
        f"() => window.callsite.peers.get('{bob}').pc.__marker === undefined", timeout=15000
    )
    wait_for_media(a, bob, video=False)
    assert re.fullmatch(r"\d+:\d\d", b.get_by_test_id("call-duration").inner_text())

    b.get_by_test_id("hangup").click()
    expect(a.get_by_test_id("call-ended")).to_contain_text("Everyone else left")
