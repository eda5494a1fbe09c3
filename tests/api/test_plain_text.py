"""Names a user shows to others, reasons and device ids are plain text: control characters and
bidirectional overrides (which make "evil\u202egnp.exe" read as "evilexe.png") are a 400."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.callflow import act, db_state, error_of, start_call
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

BAD = ["\u202eevil", "a\u2066b", "x\u200fy", "line\nbreak", "tab\there", "bell\x07", "a\u2028b"]


@pytest.mark.parametrize("text", BAD)
def test_a_reason_with_control_or_bidi_characters_is_refused(client_for: Any, text: str) -> None:
    call = start_call(client_for("alice"), "bob")
    before = db_state()
    res = act(client_for("bob"), call["id"], "reject", reason=text)
    assert "reason" in error_of(res, 400, "validation_error")["details"]
    assert db_state() == before


def test_emoji_sequences_stay_allowed(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # joined by zero-width joiners
    assert act(client_for("bob"), call["id"], "reject", reason=family).status_code == 200


@pytest.mark.parametrize("text", BAD)
def test_a_device_id_with_control_or_bidi_characters_is_refused(
    users: dict[str, Any], client_for: Any, text: str
) -> None:
    res = client_for("alice").post(
        "/api/calls/", {"invitees": ["bob"], "device_id": text}, format="json"
    )
    assert "device_id" in error_of(res, 400, "validation_error")["details"]
    res = APIClient().post(
        "/api/auth/token/",
        {"username": "alice", "password": PASSWORD, "device_id": text},
        format="json",
    )
    assert "device_id" in error_of(res, 400, "validation_error")["details"]


@pytest.mark.parametrize("text", BAD[:3])
def test_a_display_name_with_bidi_characters_is_refused(users: dict[str, Any], text: str) -> None:
    browser = Client()
    browser.force_login(users["alice"])
    res = browser.post("/profile/", {"first_name": text, "last_name": "A"})
    assert res.status_code == 400
    users["alice"].refresh_from_db()
    assert users["alice"].first_name == "Alice"
    assert browser.post("/profile/", {"first_name": "Alïce", "last_name": "Ä"}).status_code == 302
