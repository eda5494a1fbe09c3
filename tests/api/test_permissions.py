"""Permissions: force-ending calls in the admin needs a permission of its own, and TURN
credentials go only to participants of a call that has not ended, for at most 30 minutes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from invitations.models import Call
from tests.callflow import ok, start_call

CHANGELIST = "/admin/invitations/call/"


def staff_client(user: Any, *perms: str) -> Client:
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    c = Client()
    c.force_login(user)
    return c


@pytest.mark.django_db(transaction=True)
def test_viewing_calls_does_not_allow_force_ending_them(
    users: dict[str, Any], client_for: Any
) -> None:
    call = start_call(client_for("alice"), "bob")["id"]
    viewer = staff_client(users["carol"], "view_call")
    assert viewer.get(CHANGELIST).status_code == 200
    page = viewer.get(CHANGELIST).content.decode()
    assert "force_end" not in page  # the action is not offered
    viewer.post(CHANGELIST, {"action": "force_end", "_selected_action": [call]})
    assert Call.objects.get(pk=call).state == "ringing"

    operator = staff_client(users["dave"], "view_call", "force_end_call")
    assert "force_end" in operator.get(CHANGELIST).content.decode()
    operator.post(CHANGELIST, {"action": "force_end", "_selected_action": [call]})
    assert Call.objects.get(pk=call).state == "ended"


TURN = {
    "STUN_URLS": ["stun:stun.example.org:3478"],
    "TURN_URLS": ["turn:turn.example.org:3478"],
    "TURN_SECRET": "s3cret",
    "TURN_TTL": 86400,
}


def turn_of(client: Any, query: str = "") -> dict[str, Any] | None:
    res = client.get("/api/rtc/ice-servers/" + query)
    assert res.status_code == 200
    servers = res.json()["ice_servers"]
    assert servers[0] == {"urls": TURN["STUN_URLS"]}  # STUN for everyone signed in
    turn = [s for s in servers if s["urls"] == TURN["TURN_URLS"]]
    return turn[0] if turn else None


@pytest.mark.django_db
def test_turn_credentials_only_for_participants_of_a_live_call(
    client_for: Any, settings: Any
) -> None:
    settings.CALLSITE_ICE = TURN
    alice, bob, carol = client_for("alice"), client_for("bob"), client_for("carol")
    assert turn_of(alice) is None  # in no call
    call = start_call(alice, "bob")["id"]
    assert turn_of(alice) is not None
    assert turn_of(bob, f"?call_id={call}") is not None  # ringing counts: they may accept
    assert turn_of(carol) is None
    assert turn_of(carol, f"?call_id={call}") is None  # not a participant
    ok(bob, call, "accept")
    ok(bob, call, "end")
    assert turn_of(alice) is None
    assert turn_of(alice, f"?call_id={call}") is None  # the call ended


@pytest.mark.django_db
def test_turn_credentials_live_at_most_30_minutes(client_for: Any, settings: Any) -> None:
    settings.CALLSITE_ICE = TURN
    alice = client_for("alice")
    start_call(alice, "bob")
    turn = turn_of(alice)
    assert turn is not None
    expiry = int(turn["username"].split(":")[0])
    assert expiry - time.time() <= 30 * 60 + 2
