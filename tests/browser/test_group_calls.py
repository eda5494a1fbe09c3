"""Group calls: a mesh with media between every pair, and adding someone mid-call."""

from __future__ import annotations

from itertools import permutations
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import shot
from .media import wait_for_media

pytestmark = pytest.mark.browser


def test_three_person_group_call_has_media_between_every_pair(team: dict, open_as: Any) -> None:
    alice, bob, carol = team["alice"], team["bob"], team["carol"]
    pages = {alice: open_as(alice), bob: open_as(bob), carol: open_as(carol)}
    a = pages[alice]
    a.get_by_test_id(f"select-{bob}").check()
    a.get_by_test_id(f"select-{carol}").check()
    shot(a, "20-home-group-selected")
    a.get_by_test_id("group-call-start").click()
    expect(a.get_by_test_id("waiting-page")).to_be_visible()
    expect(a.get_by_test_id(f"callee-state-{bob}")).to_have_text("ringing")
    expect(a.get_by_test_id(f"callee-state-{carol}")).to_have_text("ringing")

    # The dialog names the other people invited.
    expect(pages[bob].get_by_test_id("incoming-dialog")).to_contain_text("Group call with Carol")
    shot(pages[bob], "21-incoming-group")
    pages[bob].get_by_test_id("incoming-accept").click()
    expect(a.get_by_test_id("calling-page")).to_be_visible()
    # Carol still rings: her tile says so on the calling page.
    expect(a.get_by_test_id(f"state-{carol}")).to_have_text("ringing")
    pages[carol].get_by_test_id("incoming-accept").click()
    expect(pages[carol].get_by_test_id("calling-page")).to_be_visible()

    for me, other in permutations(pages, 2):
        wait_for_media(pages[me], other, video=True)
        expect(pages[me].get_by_test_id(f"video-{other}")).to_be_visible()
        expect(pages[me].get_by_test_id(f"state-{other}")).to_have_text("joined")
    pages[carol].wait_for_timeout(800)
    shot(a, "22-calling-three")

    # Carol leaves: the others see a notice and her tile says she left; the call goes on.
    pages[carol].get_by_test_id("hangup").click()
    expect(a.get_by_test_id(f"state-{carol}")).to_have_text("left")
    expect(a.locator("#call-notices")).to_contain_text("left the call")
    shot(a, "23-calling-carol-left")
    wait_for_media(a, bob, video=True)
    expect(a.get_by_test_id("calling-page")).to_be_visible()


def test_add_someone_mid_call(team: dict, open_as: Any) -> None:
    alice, bob, dave = team["alice"], team["bob"], team["dave"]
    a, b, d = open_as(alice), open_as(bob), open_as(dave)
    a.get_by_test_id(f"call-video-{bob}").click()
    b.get_by_test_id("incoming-accept").click()
    wait_for_media(a, bob)
    wait_for_media(b, alice)

    # Bob (not the inviter) adds dave.
    b.get_by_test_id("add-people").click()
    b.locator("#add-search").fill(alice)
    expect(b.get_by_test_id(f"add-select-{alice}")).to_be_disabled()  # already in the call
    b.locator("#add-search").fill(dave)
    b.get_by_test_id(f"add-select-{dave}").check()
    shot(b, "24-add-people")
    b.get_by_test_id("add-people-invite").click()
    expect(b.get_by_test_id(f"state-{dave}")).to_have_text("ringing")
    expect(a.get_by_test_id(f"state-{dave}")).to_have_text("ringing")
    expect(d.get_by_test_id("incoming-caller")).to_contain_text(bob)
    expect(d.get_by_test_id("incoming-dialog")).to_contain_text("Group call with Alice")
    d.get_by_test_id("incoming-accept").click()
    expect(d.get_by_test_id("calling-page")).to_be_visible()

    pages = {alice: a, bob: b, dave: d}
    for me, other in permutations(pages, 2):
        wait_for_media(pages[me], other, video=True)
    expect(a.get_by_test_id(f"state-{dave}")).to_have_text("joined")
    shot(d, "25-calling-added")

    # End for everyone takes every participant home.
    a.get_by_test_id("end-for-all").click()
    for page in (b, d):
        expect(page.get_by_test_id("call-ended")).to_be_visible()
        page.wait_for_url("**/", timeout=10000)
