"""Group calls: several invitees, adding people mid-call, the participant limit, quitting.

Given a call with more than one invitee, then each invitee answers on their own, any accepted
participant may invite more (a new deadline each), and the call ends only by API.md's rules.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from tests.callflow import act, db_state, error_of, events_of, ok, start_call, states, url, who

pytestmark = pytest.mark.django_db


@pytest.fixture
def max_three(settings: Any) -> None:
    """At most three participants inviting/received/accepted in one call."""
    settings.CALLSITE = {**settings.CALLSITE, "MAX_ACTIVE_PARTICIPANTS": 3}


def test_each_invitee_answers_independently(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol", "dave")
    cid = call["id"]
    first = ok(client_for("bob"), cid, "accept")
    assert first["state"] == "ongoing"
    ok(client_for("carol"), cid, "reject", reason="driving")
    after = ok(client_for("dave"), cid, "accept")
    assert states(after) == {
        "alice": "accepted",
        "bob": "accepted",
        "carol": "rejected",
        "dave": "accepted",
    }
    assert after["state"] == "ongoing"
    assert who(after, "carol")["reason"] == "driving"


def test_a_rejection_does_not_end_a_call_while_others_still_ring(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    after = ok(client_for("bob"), call["id"], "reject")
    assert after["state"] == "ringing" and who(after, "carol")["state"] == "inviting"


def test_the_inviter_can_add_people_while_the_call_still_rings(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    res = act(client_for("alice"), call["id"], "invite", invitees=["carol"])
    assert res.status_code == 200 and res.json()["errors"] == []
    after = res.json()["call"]
    assert who(after, "carol")["state"] == "inviting" and after["state"] == "ringing"


def test_an_accepted_invitee_adds_someone_mid_call(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", timeout=30)
    ok(client_for("bob"), call["id"], "accept")
    res = act(client_for("bob"), call["id"], "invite", invitees=["carol"], extended_data="join")
    assert res.status_code == 200
    body = res.json()
    assert body["errors"] == []
    carol = who(body["call"], "carol")
    assert carol["state"] == "inviting" and carol["invited_by"] == "bob"
    assert carol["extended_data"] == "join" and carol["deadline"] is not None
    assert body["call"]["inviter"] == "alice"  # the call's inviter never changes
    assert events_of(call["id"], "carol") == ["invited"]
    # carol joins and all three talk
    assert ok(client_for("carol"), call["id"], "accept")["state"] == "ongoing"


def test_inviting_someone_who_rings_or_talks_in_this_call_is_already_in_call(
    client_for: Any,
) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    before = db_state()
    res = act(client_for("alice"), call["id"], "invite", invitees=["bob", "carol", "nobody"])
    assert res.status_code == 200
    reasons = {e["user"]: e["reason"] for e in res.json()["errors"]}
    assert reasons == {"nobody": "not_found", "bob": "already_in_call", "carol": "already_in_call"}
    assert db_state() == before  # carol's deadline was not renewed


def test_inviting_the_inviter_back_after_they_quit(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    ok(client_for("carol"), call["id"], "accept")
    ok(client_for("alice"), call["id"], "quit")
    res = act(client_for("bob"), call["id"], "invite", invitees=["alice"])
    assert res.status_code == 200 and res.json()["errors"] == []
    alice = who(res.json()["call"], "alice")
    assert alice["state"] == "inviting" and alice["role"] == "inviter"
    # she answers like any invitee now: she was invited by bob
    assert who(ok(client_for("alice"), call["id"], "accept"), "alice")["state"] == "accepted"


def test_a_ringing_inviter_who_was_invited_back_keeps_the_call_alive(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    ok(client_for("carol"), call["id"], "accept")
    ok(client_for("alice"), call["id"], "quit")
    act(client_for("bob"), call["id"], "invite", invitees=["alice"])
    # bob is the only one accepted, but alice rings for him: the call goes on
    after = ok(client_for("carol"), call["id"], "quit")
    assert after["state"] == "ongoing" and who(after, "alice")["state"] == "inviting"
    # and alice may also decline
    ended = ok(client_for("alice"), call["id"], "reject")
    assert ended["end_reason"] == "all_left"


def test_the_default_limit_is_ten_active_participants(client_for: Any) -> None:
    assert settings.CALLSITE["MAX_ACTIVE_PARTICIPANTS"] == 10
    names = ["bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
    call = start_call(client_for("alice"), *names)
    res = act(client_for("alice"), call["id"], "invite", invitees=["mallory"])
    assert res.json()["errors"] == [{"user": "mallory", "reason": "call_full"}]


def test_users_past_the_limit_go_to_errors_as_call_full(client_for: Any, max_three: None) -> None:
    res = client_for("alice").post(
        "/api/calls/", {"invitees": ["bob", "carol", "dave", "erin"]}, format="json"
    )
    assert res.status_code == 201
    body = res.json()
    assert body["errors"] == [
        {"user": "dave", "reason": "call_full"},
        {"user": "erin", "reason": "call_full"},
    ]
    assert [p["user"] for p in body["call"]["participants"]] == ["alice", "bob", "carol"]


def test_a_full_call_refuses_additions_mid_call(client_for: Any, max_three: None) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    before = db_state()
    res = act(client_for("bob"), call["id"], "invite", invitees=["dave"])
    assert res.status_code == 200
    assert res.json()["errors"] == [{"user": "dave", "reason": "call_full"}]
    assert db_state() == before


def test_a_slot_frees_up_when_someone_leaves(client_for: Any, max_three: None) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    ok(client_for("carol"), call["id"], "reject")
    res = act(client_for("bob"), call["id"], "invite", invitees=["dave", "erin"])
    assert res.json()["errors"] == [{"user": "erin", "reason": "call_full"}]
    assert who(res.json()["call"], "dave")["state"] == "inviting"


def test_busy_invitees_do_not_take_a_slot(client_for: Any, max_three: None) -> None:
    start_call(client_for("frank"), "dave")  # dave is busy ringing for frank
    res = client_for("alice").post(
        "/api/calls/", {"invitees": ["dave", "bob", "carol"]}, format="json"
    )
    body = res.json()
    assert body["errors"] == []
    assert states(body["call"]) == {
        "alice": "accepted",
        "dave": "rejected",
        "bob": "inviting",
        "carol": "inviting",
    }


def test_quitting_a_group_call_leaves_the_others_talking(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    ok(client_for("carol"), call["id"], "accept")
    after = ok(client_for("carol"), call["id"], "quit", extended_data="gotta go")
    assert after["state"] == "ongoing"
    assert who(after, "carol")["state"] == "quit"
    assert who(after, "carol")["extended_data"] == "gotta go"


def test_the_inviter_quitting_an_ongoing_group_call_does_not_end_it(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    ok(client_for("carol"), call["id"], "accept")
    after = ok(client_for("alice"), call["id"], "quit")
    assert after["state"] == "ongoing"
    assert states(after) == {"alice": "quit", "bob": "accepted", "carol": "accepted"}
    # and alice, having quit, may not end it for the others
    error_of(act(client_for("alice"), call["id"], "end"), 409, "invalid_state")


def test_the_last_two_leaving_one_by_one_ends_it_all_left(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol", "dave")
    for name in ("bob", "carol"):
        ok(client_for(name), call["id"], "accept")
    ok(client_for("dave"), call["id"], "reject")
    assert ok(client_for("bob"), call["id"], "quit")["state"] == "ongoing"
    after = ok(client_for("alice"), call["id"], "quit")
    assert after["state"] == "ended" and after["end_reason"] == "all_left"
    assert states(after) == {
        "alice": "quit",
        "bob": "quit",
        "carol": "accepted",
        "dave": "rejected",
    }


def test_all_left_cancels_whoever_still_rings(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    ok(client_for("bob"), call["id"], "accept")
    act(client_for("bob"), call["id"], "invite", invitees=["carol", "dave"])
    ok(client_for("alice"), call["id"], "quit")
    mid = client_for("bob").get(url(call["id"])).json()
    assert mid["state"] == "ongoing"  # bob waits for carol and dave
    after = ok(client_for("bob"), call["id"], "quit")
    assert after["end_reason"] == "all_left"
    assert who(after, "carol")["state"] == "cancelled"
    assert who(after, "dave")["state"] == "cancelled"
    assert all(p["deadline"] is None for p in after["participants"])


def test_invitees_cancelled_one_at_a_time_leave_the_rest_ringing(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol", "dave")
    after = ok(client_for("alice"), call["id"], "cancel", invitees=["bob", "carol"])
    assert states(after) == {
        "alice": "accepted",
        "bob": "cancelled",
        "carol": "cancelled",
        "dave": "inviting",
    }
    assert after["state"] == "ringing"


def test_cancelling_a_mix_of_ringing_and_answered_is_all_or_nothing(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    before = db_state()
    res = act(client_for("alice"), call["id"], "cancel", invitees=["carol", "bob"])
    error_of(res, 409, "invalid_state")
    assert db_state() == before
