"""Busy: the server decides, a busy invitee is rejected on their behalf, a busy caller gets 409.

API.md: a user is busy while they hold a participation in a call that has not ended with state
``inviting``, ``received`` or ``accepted``; so a user rings for, or talks in, at most one call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from invitations import services
from invitations.models import ACTIVE_STATES, LIVE_CALL_STATES, Participant
from tests.callflow import (
    Inbox,
    act,
    db_state,
    error_of,
    events_of,
    ok,
    start_call,
    states,
    url,
    who,
)

pytestmark = pytest.mark.django_db(transaction=True)  # events go out on commit


def active_calls_of(username: str) -> int:
    return Participant.objects.filter(
        user__username=username, state__in=ACTIVE_STATES, call__state__in=LIVE_CALL_STATES
    ).count()


@pytest.fixture
def inbox(users: dict[str, Any]) -> Callable[[str], list[dict[str, Any]]]:
    """inbox("bob") -> every call event published to bob's devices so far (drains it)."""
    return Inbox(users).take


# --- given bob is busy, when alice invites him ----------------------------------------------------


def bob_talks_with_carol(client_for: Any) -> dict[str, Any]:
    call = start_call(client_for("carol"), "bob")
    return ok(client_for("bob"), call["id"], "accept")


def bob_rings_for_carol(client_for: Any) -> dict[str, Any]:
    return start_call(client_for("carol"), "bob")


def bob_calls_carol(client_for: Any) -> dict[str, Any]:
    return start_call(client_for("bob"), "carol")


@pytest.mark.parametrize(
    "busy_because", [bob_talks_with_carol, bob_rings_for_carol, bob_calls_carol]
)
def test_a_busy_invitee_is_rejected_at_once_with_reason_busy_and_gets_no_events(
    client_for: Any, inbox: Any, busy_because: Callable[[Any], dict[str, Any]]
) -> None:
    other = busy_because(client_for)
    inbox("bob")  # forget what the other call told them
    inbox("alice")
    before_other = client_for("bob").get(url(other["id"])).json()

    res = client_for("alice").post("/api/calls/", {"invitees": ["bob"]}, format="json")
    assert res.status_code == 201
    body = res.json()
    assert body["errors"] == []  # busy is not an error: it is bob's (automatic) answer
    bob = who(body["call"], "bob")
    assert bob["state"] == "rejected" and bob["reason"] == "busy"
    assert bob["deadline"] is None
    assert body["call"]["state"] == "ended" and body["call"]["end_reason"] == "unanswered"
    assert events_of(body["call"]["id"], "bob") == ["busy"]

    # bob never rang: not one event of alice's call, and his own call is untouched
    assert [e for e in inbox("bob") if e["call_id"] == body["call"]["id"]] == []
    assert client_for("bob").get(url(other["id"])).json() == before_other
    # alice sees it like any rejection
    seen = [(e["type"], e.get("user"), e.get("reason")) for e in inbox("alice")]
    assert ("call.user_state_changed", "bob", "busy") in seen
    assert active_calls_of("bob") == 1


def test_a_busy_invitee_among_others_does_not_stop_the_call(client_for: Any) -> None:
    bob_talks_with_carol(client_for)
    call = start_call(client_for("alice"), "bob", "dave")
    assert states(call) == {"alice": "accepted", "bob": "rejected", "dave": "inviting"}
    assert call["state"] == "ringing"


def test_a_busy_user_added_mid_call_is_rejected_busy_too(client_for: Any, inbox: Any) -> None:
    bob_talks_with_carol(client_for)
    call = start_call(client_for("alice"), "dave")
    ok(client_for("dave"), call["id"], "accept")
    inbox("bob")  # (nothing new should come after this)
    res = act(client_for("dave"), call["id"], "invite", invitees=["bob"])
    assert res.status_code == 200 and res.json()["errors"] == []
    assert who(res.json()["call"], "bob")["reason"] == "busy"
    assert inbox("bob") == []


# --- a busy caller --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "busy_because", [bob_talks_with_carol, bob_rings_for_carol, bob_calls_carol]
)
def test_a_busy_user_who_starts_a_call_gets_409_busy_and_nothing_changes(
    client_for: Any, busy_because: Callable[[Any], dict[str, Any]]
) -> None:
    busy_because(client_for)
    before = db_state()
    res = client_for("bob").post("/api/calls/", {"invitees": ["dave"]}, format="json")
    error_of(res, 409, "busy")
    assert db_state() == before
    assert active_calls_of("dave") == 0


# --- when busy ends -------------------------------------------------------------------------------


def test_a_user_is_free_again_once_their_call_ends(client_for: Any) -> None:
    other = bob_talks_with_carol(client_for)
    ok(client_for("carol"), other["id"], "end")
    call = start_call(client_for("alice"), "bob")
    assert who(call, "bob")["state"] == "inviting"
    assert start_call(client_for("carol"), "dave")["state"] == "ringing"


@pytest.mark.parametrize("left_as", ["rejected", "timeout", "quit", "cancelled"])
def test_leaving_a_live_group_call_frees_the_user(client_for: Any, left_as: str) -> None:
    # given carol's group call with dave goes on, and bob no longer holds an active part in it
    call = start_call(client_for("carol"), "dave", "bob")
    ok(client_for("dave"), call["id"], "accept")
    if left_as == "rejected":
        ok(client_for("bob"), call["id"], "reject")
    elif left_as == "timeout":
        p = Participant.objects.get(call_id=call["id"], user__username="bob")
        Participant.objects.filter(pk=p.pk).update(deadline=timezone.now() - timedelta(seconds=1))
        assert services.expire(participant_id=p.pk)
    elif left_as == "quit":
        ok(client_for("bob"), call["id"], "accept")
        ok(client_for("bob"), call["id"], "quit")
    else:
        ok(client_for("carol"), call["id"], "cancel", invitees=["bob"])
    assert client_for("carol").get(url(call["id"])).json()["state"] == "ongoing"
    # then bob rings for alice, and may also start calls himself
    assert who(start_call(client_for("alice"), "bob"), "bob")["state"] == "inviting"


def test_a_free_user_can_start_a_call_after_being_rejected_busy(client_for: Any) -> None:
    other = bob_rings_for_carol(client_for)
    start_call(client_for("alice"), "bob")  # bob: rejected busy there
    ok(client_for("bob"), other["id"], "reject")
    assert start_call(client_for("bob"), "alice")["state"] == "ringing"


# --- at most one call at a time -------------------------------------------------------------------


def test_a_user_rings_in_at_most_one_call(client_for: Any) -> None:
    first = start_call(client_for("alice"), "bob")
    for caller in ("carol", "dave", "erin"):
        call = start_call(client_for(caller), "bob", "frank" if caller == "carol" else "grace")
        assert who(call, "bob")["reason"] == "busy"
    assert active_calls_of("bob") == 1
    incoming = client_for("bob").get("/api/calls/?state=ringing").json()["results"]
    ringing_for_bob = [c for c in incoming if who(c, "bob")["state"] in ("inviting", "received")]
    assert [c["id"] for c in ringing_for_bob] == [first["id"]]


def test_reinviting_a_user_who_became_busy_rejects_them_busy(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("carol"), call["id"], "accept")
    ok(client_for("bob"), call["id"], "reject")
    start_call(client_for("bob"), "dave")  # bob is now busy calling dave
    res = act(client_for("alice"), call["id"], "invite", invitees=["bob"])
    assert res.status_code == 200
    bob = who(res.json()["call"], "bob")
    assert bob["state"] == "rejected" and bob["reason"] == "busy"
    assert active_calls_of("bob") == 1
