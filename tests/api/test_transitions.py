"""Every participant transition of API.md, every refused one, and how calls end — over REST.

Given a call in some state, when a participant acts through /api/calls/{id}/<action>/, then the
call snapshot, the database and the timeline say exactly what API.md says. Timeouts are driven
through ``services.expire`` after moving the deadline into the past (the timer worker itself is
specified in test_timers.py), and ``call.ack`` through ``services.acknowledge`` (the WebSocket
comes later).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from invitations import services
from invitations.models import Participant
from tests.callflow import act, db_state, error_of, events_of, ok, start_call, states, url, who
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ACTIONS = ("invite", "cancel", "accept", "reject", "quit", "end")


def time_out(call_id: str, username: str) -> bool:
    """Let a ringing invitee's deadline pass and let the timer fire for them."""
    p = Participant.objects.get(call_id=call_id, user__username=username)
    Participant.objects.filter(pk=p.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    return services.expire(participant_id=p.pk)


def ack(users: dict[str, Any], call_id: str, username: str) -> dict[str, Any]:
    return services.acknowledge(actor=users[username], call_id=call_id, device_id="phone-1")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def ongoing_group(client_for: Any, *invitees: str) -> dict[str, Any]:
    """alice calls the invitees; bob accepts, so the call is ongoing and the rest still ring."""
    call = start_call(client_for("alice"), *invitees)
    return ok(client_for("bob"), call["id"], "accept")


# --- starting a call ----------------------------------------------------------------------------


def test_starting_a_call_makes_the_inviter_accepted_and_each_invitee_ring(client_for: Any) -> None:
    before = timezone.now()
    res = client_for("alice").post(
        "/api/calls/",
        {"invitees": ["bob"], "type": "audio", "timeout": 30, "extended_data": "hi"},
        format="json",
    )
    assert res.status_code == 201
    body = res.json()
    assert body["errors"] == []
    call = body["call"]
    assert call["inviter"] == "alice"
    assert call["type"] == "audio"
    assert call["state"] == "ringing"
    assert call["end_reason"] is None and call["ended_at"] is None
    assert call["timeout"] == 30
    assert call["extended_data"] == "hi"
    uuid.UUID(call["id"])
    alice, bob = who(call, "alice"), who(call, "bob")
    assert alice["role"] == "inviter" and alice["state"] == "accepted"
    assert alice["deadline"] is None and alice["invited_by"] is None
    assert bob["role"] == "invitee" and bob["state"] == "inviting"
    assert bob["invited_by"] == "alice" and bob["reason"] is None
    assert bob["extended_data"] == "hi"
    ringing_for = parse(bob["deadline"]) - before
    assert timedelta(seconds=29) < ringing_for <= timedelta(seconds=31)
    assert events_of(call["id"]) == ["created", "invited"]


def test_a_call_defaults_to_video_with_a_60_second_timeout_and_empty_extended_data(
    client_for: Any,
) -> None:
    call = start_call(client_for("alice"), "bob")
    assert call["type"] == "video"
    assert call["timeout"] == 60
    assert call["extended_data"] == "" and who(call, "bob")["extended_data"] == ""


def test_the_invitee_sees_the_call_and_a_stranger_gets_404(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    seen = client_for("bob").get(url(call["id"]))
    assert seen.status_code == 200 and seen.json() == call
    error_of(client_for("carol").get(url(call["id"])), 404, "not_found")


# --- inviting -> received / accepted / rejected / cancelled / timeout ---------------------------


def test_ack_moves_inviting_to_received_and_a_second_ack_is_a_no_op(
    users: dict[str, Any], client_for: Any
) -> None:
    call = start_call(client_for("alice"), "bob")
    after = ack(users, call["id"], "bob")
    assert who(after, "bob")["state"] == "received"
    assert who(after, "bob")["deadline"] == who(call, "bob")["deadline"]  # still ringing
    snapshot = db_state()
    again = ack(users, call["id"], "bob")
    assert who(again, "bob")["state"] == "received"
    assert db_state() == snapshot
    assert events_of(call["id"], "bob") == ["invited", "received"]


@pytest.mark.parametrize("acked", [False, True], ids=["inviting", "received"])
def test_the_invitee_accepts_and_the_call_becomes_ongoing(
    users: dict[str, Any], client_for: Any, acked: bool
) -> None:
    call = start_call(client_for("alice"), "bob")
    if acked:
        ack(users, call["id"], "bob")
    after = ok(client_for("bob"), call["id"], "accept", extended_data="ok", device_id="bob-phone")
    assert after["state"] == "ongoing"
    bob = who(after, "bob")
    assert bob["state"] == "accepted" and bob["deadline"] is None and bob["reason"] is None
    assert bob["extended_data"] == "ok"
    assert Participant.objects.get(call_id=call["id"], user=users["bob"]).device_id == "bob-phone"
    assert events_of(call["id"], "bob")[-1] == "accepted"


@pytest.mark.parametrize("acked", [False, True], ids=["inviting", "received"])
def test_the_invitee_rejects_with_declined_by_default_and_a_1to1_call_ends_unanswered(
    users: dict[str, Any], client_for: Any, acked: bool
) -> None:
    call = start_call(client_for("alice"), "bob")
    if acked:
        ack(users, call["id"], "bob")
    after = ok(client_for("bob"), call["id"], "reject")
    bob = who(after, "bob")
    assert bob["state"] == "rejected" and bob["reason"] == "declined" and bob["deadline"] is None
    assert after["state"] == "ended" and after["end_reason"] == "unanswered"
    assert after["ended_at"] is not None


def test_a_rejection_may_carry_an_app_reason(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    after = ok(client_for("bob"), call["id"], "reject", reason="in_a_meeting", extended_data="x")
    assert who(after, "bob")["reason"] == "in_a_meeting"
    assert who(after, "bob")["extended_data"] == "x"


@pytest.mark.parametrize("acked", [False, True], ids=["inviting", "received"])
def test_the_inviter_cancels_and_the_call_ends_cancelled(
    users: dict[str, Any], client_for: Any, acked: bool
) -> None:
    call = start_call(client_for("alice"), "bob")
    if acked:
        ack(users, call["id"], "bob")
    after = ok(client_for("alice"), call["id"], "cancel", extended_data="never mind")
    bob = who(after, "bob")
    assert bob["state"] == "cancelled" and bob["deadline"] is None and bob["reason"] is None
    assert after["state"] == "ended" and after["end_reason"] == "cancelled"
    assert after["extended_data"] == ""  # the call's own data is what it started with


@pytest.mark.parametrize("acked", [False, True], ids=["inviting", "received"])
def test_an_unanswered_invitee_times_out_and_a_1to1_call_ends_unanswered(
    users: dict[str, Any], client_for: Any, acked: bool
) -> None:
    call = start_call(client_for("alice"), "bob")
    if acked:
        ack(users, call["id"], "bob")
    assert time_out(call["id"], "bob") is True
    after = client_for("alice").get(url(call["id"])).json()
    assert who(after, "bob")["state"] == "timeout" and who(after, "bob")["deadline"] is None
    assert after["state"] == "ended" and after["end_reason"] == "unanswered"
    assert events_of(call["id"])[-2:] == ["timeout", "ended"]


def test_expire_before_the_deadline_does_nothing(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    p = Participant.objects.get(call_id=call["id"], user__username="bob")
    snapshot = db_state()
    assert services.expire(participant_id=p.pk) is False
    assert db_state() == snapshot


def test_expire_is_idempotent(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    assert time_out(call["id"], "bob") is True
    snapshot = db_state()
    p = Participant.objects.get(call_id=call["id"], user__username="bob")
    assert services.expire(participant_id=p.pk) is False
    assert services.expire(participant_id=p.pk) is False
    assert db_state() == snapshot
    assert events_of(call["id"], "bob").count("timeout") == 1


def test_answering_after_the_deadline_is_refused_even_if_the_timer_is_late(
    client_for: Any,
) -> None:
    call = start_call(client_for("alice"), "bob")
    Participant.objects.filter(call_id=call["id"], user__username="bob").update(
        deadline=timezone.now() - timedelta(milliseconds=10)
    )
    error_of(act(client_for("bob"), call["id"], "accept"), 409, "invalid_state")
    after = client_for("bob").get(url(call["id"])).json()
    assert who(after, "bob")["state"] == "timeout"
    assert after["end_reason"] == "unanswered"


# --- accepted -> quit, and ending ---------------------------------------------------------------


def test_the_invitee_quits_a_1to1_call_and_it_ends_all_left(client_for: Any) -> None:
    call = ongoing_group(client_for, "bob")
    after = ok(client_for("bob"), call["id"], "quit", extended_data="bye")
    assert who(after, "bob")["state"] == "quit"
    assert who(after, "alice")["state"] == "accepted"  # alice did not leave; the call just ended
    assert after["state"] == "ended" and after["end_reason"] == "all_left"


def test_the_inviter_quits_an_ongoing_1to1_call_and_it_ends_all_left(client_for: Any) -> None:
    call = ongoing_group(client_for, "bob")
    after = ok(client_for("alice"), call["id"], "quit")
    assert who(after, "alice")["state"] == "quit"
    assert after["end_reason"] == "all_left"


def test_the_inviter_quitting_while_it_rings_cancels_everyone(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    after = ok(client_for("alice"), call["id"], "quit", extended_data="oops")
    assert states(after) == {"alice": "quit", "bob": "cancelled", "carol": "cancelled"}
    assert after["state"] == "ended" and after["end_reason"] == "cancelled"
    assert all(p["deadline"] is None for p in after["participants"])


@pytest.mark.parametrize("by", ["alice", "bob"])
def test_any_accepted_participant_ends_the_call_and_ringing_invitees_are_cancelled(
    client_for: Any, by: str
) -> None:
    call = ongoing_group(client_for, "bob", "carol")
    after = ok(client_for(by), call["id"], "end", extended_data="done")
    assert after["state"] == "ended" and after["end_reason"] == "ended"
    assert after["ended_at"] is not None
    assert states(after) == {"alice": "accepted", "bob": "accepted", "carol": "cancelled"}
    assert events_of(call["id"])[-2:] == ["cancelled", "ended"]


def test_the_inviter_may_end_a_call_that_still_rings(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    after = ok(client_for("alice"), call["id"], "end")
    assert after["end_reason"] == "ended"
    assert who(after, "bob")["state"] == "cancelled"


# --- how a call ends: the four reasons of REST ----------------------------------------------------


def test_unanswered_when_some_were_cancelled_and_the_rest_rejected_or_timed_out(
    client_for: Any,
) -> None:
    call = start_call(client_for("alice"), "bob", "carol", "dave")
    ok(client_for("alice"), call["id"], "cancel", invitees=["carol"])
    ok(client_for("bob"), call["id"], "reject")
    assert client_for("alice").get(url(call["id"])).json()["state"] == "ringing"
    assert time_out(call["id"], "dave")
    after = client_for("alice").get(url(call["id"])).json()
    assert after["state"] == "ended" and after["end_reason"] == "unanswered"


def test_cancelled_when_the_inviter_withdraws_invitees_one_by_one(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    mid = ok(client_for("alice"), call["id"], "cancel", invitees=["bob"])
    assert mid["state"] == "ringing" and who(mid, "carol")["state"] == "inviting"
    after = ok(client_for("alice"), call["id"], "cancel", invitees=["carol"])
    assert after["end_reason"] == "cancelled"


def test_all_left_when_fewer_than_two_remain_accepted_and_nobody_rings(client_for: Any) -> None:
    call = ongoing_group(client_for, "bob", "carol")
    ok(client_for("carol"), call["id"], "accept")
    mid = ok(client_for("alice"), call["id"], "quit")
    assert mid["state"] == "ongoing"  # bob and carol still talk
    after = ok(client_for("bob"), call["id"], "quit")
    assert after["state"] == "ended" and after["end_reason"] == "all_left"
    assert who(after, "carol")["state"] == "accepted"


def test_all_left_when_nobody_remains_accepted_even_if_someone_still_rings(
    client_for: Any,
) -> None:
    call = ongoing_group(client_for, "bob", "carol")
    mid = ok(client_for("alice"), call["id"], "quit")
    assert mid["state"] == "ongoing"  # bob is accepted and carol may still join him
    after = ok(client_for("bob"), call["id"], "quit")
    assert after["end_reason"] == "all_left"
    assert who(after, "carol")["state"] == "cancelled"


def test_a_lone_accepted_participant_keeps_the_call_while_someone_rings(client_for: Any) -> None:
    call = ongoing_group(client_for, "bob", "carol")
    after = ok(client_for("alice"), call["id"], "quit")
    assert after["state"] == "ongoing"
    assert time_out(call["id"], "carol")
    ended = client_for("bob").get(url(call["id"])).json()
    assert ended["end_reason"] == "all_left"


# --- refused transitions: 409 invalid_state -------------------------------------------------------


@pytest.mark.parametrize("action", ["accept", "reject"])
def test_answering_twice_is_refused(client_for: Any, action: str) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    snapshot = db_state()
    error_of(act(client_for("bob"), call["id"], action), 409, "invalid_state")
    assert db_state() == snapshot


@pytest.mark.parametrize("action", ["accept", "reject"])
def test_a_rejected_invitee_cannot_answer_again(client_for: Any, action: str) -> None:
    call = ongoing_group(client_for, "bob", "carol")
    ok(client_for("carol"), call["id"], "reject")
    snapshot = db_state()
    error_of(act(client_for("carol"), call["id"], action), 409, "invalid_state")
    assert db_state() == snapshot


@pytest.mark.parametrize("action", ["accept", "reject", "quit", "end", "invite"])
def test_a_timed_out_invitee_in_a_live_call_can_do_nothing(client_for: Any, action: str) -> None:
    call = ongoing_group(client_for, "bob", "carol")
    time_out(call["id"], "carol")
    snapshot = db_state()
    extra = {"invitees": ["dave"]} if action == "invite" else {}
    error_of(act(client_for("carol"), call["id"], action, **extra), 409, "invalid_state")
    assert db_state() == snapshot


@pytest.mark.parametrize("action", ["quit", "end"])
def test_a_ringing_invitee_cannot_quit_or_end(client_for: Any, action: str) -> None:
    call = start_call(client_for("alice"), "bob")
    snapshot = db_state()
    error_of(act(client_for("bob"), call["id"], action), 409, "invalid_state")
    assert db_state() == snapshot


def test_a_ringing_invitee_cannot_invite_others(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    snapshot = db_state()
    res = act(client_for("bob"), call["id"], "invite", invitees=["carol"])
    error_of(res, 409, "invalid_state")
    assert db_state() == snapshot


def test_quitting_twice_is_refused(client_for: Any) -> None:
    call = ongoing_group(client_for, "bob", "carol")
    ok(client_for("carol"), call["id"], "accept")
    ok(client_for("carol"), call["id"], "quit")
    snapshot = db_state()
    error_of(act(client_for("carol"), call["id"], "quit"), 409, "invalid_state")
    assert db_state() == snapshot


def test_cancelling_an_invitee_who_already_answered_is_refused(client_for: Any) -> None:
    call = ongoing_group(client_for, "bob", "carol")
    snapshot = db_state()
    res = act(client_for("alice"), call["id"], "cancel", invitees=["bob"])
    error_of(res, 409, "invalid_state")
    assert db_state() == snapshot


def test_cancelling_with_nothing_ringing_is_refused(client_for: Any) -> None:
    call = ongoing_group(client_for, "bob")
    snapshot = db_state()
    error_of(act(client_for("alice"), call["id"], "cancel"), 409, "invalid_state")
    assert db_state() == snapshot


def test_ack_of_an_answered_invitation_is_refused(users: dict[str, Any], client_for: Any) -> None:
    from invitations.errors import CallError

    call = ongoing_group(client_for, "bob", "carol")
    snapshot = db_state()
    with pytest.raises(CallError) as refused:
        ack(users, call["id"], "bob")
    assert refused.value.code == "invalid_state"
    assert db_state() == snapshot


# --- refused transitions: 403 permission_denied -------------------------------------------------


@pytest.mark.parametrize("action", ["accept", "reject"])
def test_the_inviter_can_never_answer_their_own_call(client_for: Any, action: str) -> None:
    call = start_call(client_for("alice"), "bob")
    snapshot = db_state()
    error_of(act(client_for("alice"), call["id"], action), 403, "permission_denied")
    assert db_state() == snapshot


def test_the_inviter_can_never_acknowledge_their_own_call(
    users: dict[str, Any], client_for: Any
) -> None:
    from invitations.errors import CallError

    call = start_call(client_for("alice"), "bob")
    with pytest.raises(CallError) as refused:
        ack(users, call["id"], "alice")
    assert refused.value.code == "permission_denied"


def test_cancelling_someone_you_did_not_invite_is_forbidden(client_for: Any) -> None:
    # given bob accepted and invited dave himself
    call = ongoing_group(client_for, "bob", "carol")
    ok_res = act(client_for("bob"), call["id"], "invite", invitees=["dave"])
    assert ok_res.status_code == 200
    snapshot = db_state()
    # alice may not withdraw bob's invitation, nor may bob withdraw alice's
    error_of(
        act(client_for("alice"), call["id"], "cancel", invitees=["dave"]), 403, "permission_denied"
    )
    error_of(
        act(client_for("bob"), call["id"], "cancel", invitees=["carol"]), 403, "permission_denied"
    )
    assert db_state() == snapshot
    # and "cancel all" only touches the invitations you sent
    after = ok(client_for("bob"), call["id"], "cancel")
    assert states(after)["dave"] == "cancelled" and states(after)["carol"] == "inviting"


def test_an_invitee_cannot_cancel_the_call_they_are_invited_to(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    snapshot = db_state()
    error_of(
        act(client_for("bob"), call["id"], "cancel", invitees=["carol"]), 403, "permission_denied"
    )
    error_of(act(client_for("bob"), call["id"], "cancel"), 409, "invalid_state")
    assert db_state() == snapshot


def test_cancelling_a_user_never_invited_is_a_validation_error(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    snapshot = db_state()
    res = act(client_for("alice"), call["id"], "cancel", invitees=["carol"])
    assert "invitees" in error_of(res, 400, "validation_error")["details"]
    assert db_state() == snapshot


# --- refused transitions: 404 not_found -----------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_acting_on_a_call_you_are_not_in_is_404_and_leaks_nothing(
    client_for: Any, action: str
) -> None:
    call = start_call(client_for("alice"), "bob")
    snapshot = db_state()
    extra = {"invitees": ["carol"]} if action == "invite" else {}
    stranger = error_of(act(client_for("dave"), call["id"], action, **extra), 404, "not_found")
    missing = error_of(
        act(client_for("dave"), str(uuid.uuid4()), action, **extra), 404, "not_found"
    )
    assert stranger == missing  # same answer whether or not the call exists
    assert db_state() == snapshot


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "%00", "0" * 40])
@pytest.mark.parametrize("action", [None, *ACTIONS])
def test_a_malformed_call_id_is_404(client_for: Any, bad_id: str, action: str | None) -> None:
    c = client_for("alice")
    extra = {"invitees": ["carol"]} if action == "invite" else {}
    res = c.get(url(bad_id)) if action is None else act(c, bad_id, action, **extra)
    error_of(res, 404, "not_found")


# --- an ended call never changes ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["ended", "cancelled", "unanswered", "all_left"])
def test_an_ended_call_never_changes_again(
    users: dict[str, Any], client_for: Any, how: str
) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    cid = call["id"]
    if how == "ended":
        ok(client_for("bob"), cid, "accept")
        ok(client_for("alice"), cid, "end")
    elif how == "cancelled":
        ok(client_for("alice"), cid, "cancel")
    elif how == "unanswered":
        ok(client_for("bob"), cid, "reject")
        ok(client_for("carol"), cid, "reject")
    else:
        ok(client_for("bob"), cid, "accept")
        ok(client_for("carol"), cid, "reject")
        ok(client_for("bob"), cid, "quit")
    assert client_for("alice").get(url(cid)).json()["end_reason"] == how
    snapshot = db_state()
    for name in ("alice", "bob", "carol"):
        for action in ACTIONS:
            extra = {"invitees": ["dave"]} if action == "invite" else {}
            res = act(client_for(name), cid, action, **extra)
            if name == "alice" and action in ("accept", "reject"):
                error_of(res, 403, "permission_denied")  # what the role can never do comes first
            else:
                error_of(res, 409, "invalid_state")
    for p in Participant.objects.filter(call_id=cid):
        assert p.deadline is None
        assert services.expire(participant_id=p.pk) is False
    assert services.force_end(call_id=cid, operator=users["alice"]) is False
    assert db_state() == snapshot


# --- re-inviting starts a new deadline ---------------------------------------------------------


@pytest.mark.parametrize("left_as", ["rejected", "timeout", "quit", "cancelled"])
def test_a_reinvited_user_rings_again_with_a_new_deadline(client_for: Any, left_as: str) -> None:
    call = ongoing_group(client_for, "bob", "carol")
    cid = call["id"]
    first_deadline = parse(who(call, "carol")["deadline"])
    if left_as == "rejected":
        ok(client_for("carol"), cid, "reject", reason="later")
    elif left_as == "timeout":
        assert time_out(cid, "carol")
    elif left_as == "quit":
        ok(client_for("carol"), cid, "accept")
        ok(client_for("carol"), cid, "quit")
    else:
        ok(client_for("alice"), cid, "cancel", invitees=["carol"])
    left = client_for("alice").get(url(cid)).json()
    assert who(left, "carol")["state"] == left_as and left["state"] == "ongoing"

    before = timezone.now()
    res = act(client_for("bob"), cid, "invite", invitees=["carol"], extended_data="again")
    assert res.status_code == 200, res.content
    assert res.json()["errors"] == []
    carol = who(res.json()["call"], "carol")
    assert carol["state"] == "inviting"
    assert carol["reason"] is None
    assert carol["invited_by"] == "bob" and carol["extended_data"] == "again"
    deadline = parse(carol["deadline"])
    assert deadline > first_deadline
    assert before + timedelta(seconds=59) < deadline <= timezone.now() + timedelta(seconds=60)
    # and the new invitation can be answered
    assert who(ok(client_for("carol"), cid, "accept"), "carol")["state"] == "accepted"
    assert events_of(cid, "carol").count("invited") == 2


def test_after_a_reinvite_the_old_deadline_no_longer_expires_it(client_for: Any) -> None:
    call = ongoing_group(client_for, "bob", "carol")
    cid = call["id"]
    assert time_out(cid, "carol")
    ok(client_for("alice"), cid, "invite", invitees=["carol"])
    p = Participant.objects.get(call_id=cid, user__username="carol")
    assert services.expire(participant_id=p.pk) is False  # the timer of the old deadline
    assert Participant.objects.get(pk=p.pk).state == "inviting"


# --- the timeline ---------------------------------------------------------------------------------


def test_every_transition_appends_one_event_with_actor_and_subject(
    users: dict[str, Any], client_for: Any
) -> None:
    from invitations.models import CallEvent

    call = start_call(client_for("alice"), "bob", extended_data="e1")
    ack(users, call["id"], "bob")
    ok(client_for("bob"), call["id"], "accept")
    ok(client_for("bob"), call["id"], "end")
    rows = list(
        CallEvent.objects.filter(call_id=call["id"]).values_list(
            "kind", "actor__username", "subject__username"
        )
    )
    assert rows == [
        ("created", "alice", None),
        ("invited", "alice", "bob"),
        ("received", "bob", "bob"),
        ("accepted", "bob", "bob"),
        ("ended", "bob", None),
    ]


# --- a browser session with CSRF ------------------------------------------------------------------


def test_a_browser_session_needs_the_csrf_header_to_write(users: dict[str, Any]) -> None:
    browser = APIClient(enforce_csrf_checks=True)
    assert browser.login(username="alice", password=PASSWORD)
    # reading needs no CSRF token
    assert browser.get("/api/me/").json()["username"] == "alice"
    # writing without the header is refused, in the envelope, and changes nothing
    snapshot = db_state()
    refused = browser.post("/api/calls/", {"invitees": ["bob"]}, format="json")
    assert "CSRF" in error_of(refused, 403, "permission_denied")["message"]
    assert db_state() == snapshot
    # with Django's CSRF cookie echoed in X-CSRFToken it works
    browser.get("/admin/login/")  # any page that renders a form sets the cookie
    token = browser.cookies["csrftoken"].value
    res = browser.post("/api/calls/", {"invitees": ["bob"]}, format="json", HTTP_X_CSRFTOKEN=token)
    assert res.status_code == 201, res.content
    assert res.json()["call"]["inviter"] == "alice"
