"""Sign in and out, the profile's display name, search, and the phone-sized layout."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, shot

pytestmark = pytest.mark.browser


def test_sign_in_profile_and_sign_out(team: dict, open_as: Any, server: Any, browser: Any) -> None:
    ctx = browser.new_context(base_url=server.url)
    try:
        page = ctx.new_page()
        page.goto("/")
        page.wait_for_url("**/accounts/login/?next=/")
        page.fill("input[name=username]", team["alice"])
        page.fill("input[name=password]", "wrong")
        page.click("[data-testid=login-submit]")
        expect(page.get_by_role("alert")).to_contain_text("didn't match")
        shot(page, "50-login-error")
    finally:
        ctx.close()

    alice, bob = team["alice"], team["bob"]
    a = open_as(alice)
    a.get_by_role("link", name="Alice").click()
    a.get_by_label("First name").fill("Alicia")
    a.get_by_label("Last name").fill("Keys")
    a.get_by_test_id("profile-save").click()
    expect(a.locator(".messages")).to_contain_text("Alicia Keys")
    shot(a, "51-profile")

    # Others see the new display name, and search finds it as you type.
    b = open_as(bob)
    b.get_by_test_id("people-search").fill("alicia")
    expect(b.get_by_test_id(f"person-{alice}")).to_contain_text("Alicia Keys")
    expect(b.get_by_test_id(f"person-{alice}")).to_be_visible()
    expect(b.get_by_test_id(f"person-{team['carol']}")).to_be_hidden()
    # The search form also searches on the server (for lists longer than one page).
    b.get_by_test_id("people-search").press("Enter")
    b.wait_for_url("**/?q=alicia")
    expect(b.locator(".person")).to_have_count(1)

    # Presence is live: alice signs out, bob sees her go offline without reloading.
    expect(b.get_by_test_id(f"person-{alice}")).to_have_attribute("data-online", "true")
    a.get_by_role("button", name="Sign out").click()
    a.wait_for_url("**/accounts/login/")
    expect(b.get_by_test_id(f"person-{alice}")).to_have_attribute("data-online", "false")
    a.goto("/")
    a.wait_for_url("**/accounts/login/?next=/")
    a.fill("input[name=username]", alice)
    a.fill("input[name=password]", PASSWORD)
    a.click("[data-testid=login-submit]")
    a.wait_for_url(server.url + "/")
    expect(b.get_by_test_id(f"person-{alice}")).to_have_attribute("data-online", "true")


def test_phone_sized_home_is_usable_by_keyboard(team: dict, open_as: Any) -> None:
    alice, bob = team["alice"], team["bob"]
    a = open_as(alice, viewport={"width": 375, "height": 740})
    b = open_as(bob)
    person = a.get_by_test_id(f"person-{bob}")
    # Nothing overflows sideways on a phone.
    assert a.evaluate("document.documentElement.scrollWidth") <= 375
    expect(a.get_by_test_id(f"call-video-{bob}")).to_have_accessible_name(
        f"Video call Bob T{bob[3:]}"
    )
    person.scroll_into_view_if_needed()
    shot(a, "52-home-phone-sized")
    # Keyboard: focus the voice-call button and press Enter.
    a.get_by_test_id(f"call-audio-{bob}").focus()
    a.keyboard.press("Enter")
    expect(a.get_by_test_id("waiting-page")).to_be_visible()
    expect(b.get_by_test_id("incoming-dialog")).to_be_visible()
    # The dialog's Accept button has focus: Enter answers.
    b.keyboard.press("Enter")
    expect(a.get_by_test_id("calling-page")).to_be_visible()
    assert a.evaluate("document.documentElement.scrollWidth") <= 375
    a.wait_for_timeout(500)
    shot(a, "53-calling-phone-sized-audio")
    a.get_by_test_id("hangup").focus()
    a.keyboard.press("Enter")
    a.wait_for_url("**/")
