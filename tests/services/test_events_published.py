"""Events: published only after commit, only to the right users, with API.md's fields.

A test channel joins each user's ``user.<id>`` group, exactly as a connected device does, so these
specs see what every device of a user would receive, whatever the WebSocket consumer does next.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from invitations import events, services
from invitations.models import Participant
from tests.callflow import Inbox, act, channel_messages, error_of, ok, start_call, url, who

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs only on a real commit

EVERY_CALL_EVENT = {"type", "call_id", "call"}
EXTRA = {
    "call.invitation_received": {"inviter", "extended_data", "deadline"},
    "call.invitation_cancelled": {"operator", "extended_data"},
    "call.invitation_timeout": set(),
    "call.user_state_changed": {"user", "state", "reason", "extended_data", "device_id"},
    "call.ended": {"operator", "reason", "extended_data"},
}


@pytest.fixture
def inbox(users: dict[str, Any]) -> Inbox:
    return Inbox(users)


def shape(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The gist of each event: its type and whose state it is about."""
    return [(e["type"], e.get("user"), e.get("state")) for e in events]


def assert_well_formed(event: dict[str, Any], current: dict[str, Any]) -> None:
    assert set(event) == EVERY_CALL_EVENT | EXTRA[event["type"]], event
    assert event["call_id"] == current["id"]
    assert event["call"] == current  # the full Call after the change, as REST shows it


# --- after commit, never before -------------------------------------------------------------------


def test_nothing_is_published_before_the_transaction_commits(
    users: dict[str, Any], inbox: Inbox
) -> None:
    with transaction.atomic():
        result = services.invite(inviter=users["alice"], invitees=["bob"])
        assert inbox.take("bob") == [] and inbox.take("alice") == []
    received = inbox.take("bob")
    assert [e["type"] for e in received] == [
        "call.invitation_received",
        "call.user_state_changed",
    ]
    assert received[0]["call"] == result.call


def test_a_rolled_back_transition_publishes_nothing(users: dict[str, Any], inbox: Inbox) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        services.invite(inviter=users["alice"], invitees=["bob"])
        raise RuntimeError("the surrounding work failed")
    assert inbox.take("bob") == [] and inbox.take("alice") == []
    assert not Participant.objects.exists()


def test_timers_are_scheduled_after_commit_only(users: dict[str, Any]) -> None:
    layer = get_channel_layer()

    def timer_messages() -> list[dict[str, Any]]:
        return channel_messages(layer, settings.TIMER_CHANNEL, 0.05)

    with transaction.atomic():
        result = services.invite(inviter=users["alice"], invitees=["bob", "carol"], timeout=5)
        assert timer_messages() == []
    got = [m for m in timer_messages() if m["kind"] == "invitation"]
    deadlines = {
        p.pk: p.deadline.timestamp() for p in Participant.objects.filter(deadline__isnull=False)
    }
    assert sorted((m["id"], m["at"]) for m in got) == sorted(deadlines.items())
    assert all(m["type"] == "timer.schedule" for m in got)
    assert len(result.call["participants"]) == 3


def test_a_refused_request_publishes_nothing(client_for: Any, inbox: Inbox) -> None:
    call = start_call(client_for("alice"), "bob")
    inbox.forget("alice", "bob")
    error_of(act(client_for("alice"), call["id"], "accept"), 403, "permission_denied")
    error_of(act(client_for("bob"), call["id"], "quit"), 409, "invalid_state")
    act(client_for("bob"), call["id"], "reject", reason="x" * 40)
    assert inbox.take("alice") == [] and inbox.take("bob") == []


# --- to the right users, with the right fields ----------------------------------------------------


def test_an_invitation_reaches_each_invitee_and_everyone_sees_who_is_invited(
    client_for: Any, inbox: Inbox
) -> None:
    res = client_for("alice").post(
        "/api/calls/", {"invitees": ["bob", "carol"], "extended_data": "hello"}, format="json"
    )
    call = res.json()["call"]
    for_bob = inbox.take("bob")
    assert shape(for_bob) == [
        ("call.invitation_received", None, None),
        ("call.user_state_changed", "bob", "inviting"),
        ("call.user_state_changed", "carol", "inviting"),
    ]
    received = for_bob[0]
    assert_well_formed(received, call)
    assert received["inviter"] == "alice" and received["extended_data"] == "hello"
    assert received["deadline"] == who(call, "bob")["deadline"]
    changed = for_bob[1]
    assert_well_formed(changed, call)
    assert (changed["reason"], changed["extended_data"], changed["device_id"]) == (
        None,
        "hello",
        None,
    )
    assert shape(inbox.take("alice")) == [
        ("call.user_state_changed", "bob", "inviting"),
        ("call.user_state_changed", "carol", "inviting"),
    ]
    assert [e["type"] for e in inbox.take("carol")].count("call.invitation_received") == 1
    assert inbox.take("dave") == []


def test_ack_tells_everyone_which_device_rings(users: dict[str, Any], inbox: Inbox) -> None:
    result = services.invite(inviter=users["alice"], invitees=["bob"])
    inbox.forget("alice", "bob")
    after = services.acknowledge(actor=users["bob"], call_id=result.call["id"], device_id="tab-2")
    for name in ("alice", "bob"):
        [event] = inbox.take(name)
        assert_well_formed(event, after)
        assert (event["user"], event["state"], event["device_id"]) == ("bob", "received", "tab-2")
    # the second ack is a no-op: nothing new to tell
    services.acknowledge(actor=users["bob"], call_id=result.call["id"], device_id="tab-3")
    assert inbox.take("alice") == [] and inbox.take("bob") == []


def test_an_answer_reaches_every_participant_with_the_acting_device(
    client_for: Any, inbox: Inbox
) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    inbox.forget("alice", "bob", "carol")
    after = ok(client_for("bob"), call["id"], "accept", extended_data="hi", device_id="phone")
    for name in ("alice", "bob", "carol"):
        [event] = inbox.take(name)
        assert_well_formed(event, after)
        assert event["type"] == "call.user_state_changed"
        assert (event["user"], event["state"], event["device_id"]) == ("bob", "accepted", "phone")
        assert event["extended_data"] == "hi" and event["reason"] is None
    assert inbox.take("dave") == []


def test_a_rejection_carries_its_reason_and_a_1to1_call_then_ends(
    client_for: Any, inbox: Inbox
) -> None:
    call = start_call(client_for("alice"), "bob")
    inbox.forget("alice", "bob")
    after = ok(client_for("bob"), call["id"], "reject", reason="busy_elsewhere")
    for name in ("alice", "bob"):
        changed, ended = inbox.take(name)
        assert_well_formed(changed, after)
        assert (changed["user"], changed["state"], changed["reason"]) == (
            "bob",
            "rejected",
            "busy_elsewhere",
        )
        assert_well_formed(ended, after)
        assert ended["type"] == "call.ended"
        assert (ended["operator"], ended["reason"]) == ("bob", "unanswered")


def test_a_cancelled_invitee_is_told_who_cancelled(client_for: Any, inbox: Inbox) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    inbox.forget("alice", "bob", "carol")
    after = ok(client_for("alice"), call["id"], "cancel", invitees=["bob"], extended_data="sorry")
    cancelled, changed = inbox.take("bob")
    assert cancelled["type"] == "call.invitation_cancelled"
    assert_well_formed(cancelled, after)
    assert (cancelled["operator"], cancelled["extended_data"]) == ("alice", "sorry")
    assert (changed["user"], changed["state"]) == ("bob", "cancelled")
    # the others only see bob's state change
    assert shape(inbox.take("carol")) == [("call.user_state_changed", "bob", "cancelled")]
    assert shape(inbox.take("alice")) == [("call.user_state_changed", "bob", "cancelled")]


def test_a_timeout_is_told_to_the_invitee_and_the_state_to_everyone(
    client_for: Any, inbox: Inbox
) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    inbox.forget("alice", "bob", "carol")
    p = Participant.objects.get(call_id=call["id"], user__username="bob")
    Participant.objects.filter(pk=p.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert services.expire(participant_id=p.pk)
    current = client_for("alice").get(url(call["id"])).json()
    timed_out, changed = inbox.take("bob")
    assert timed_out["type"] == "call.invitation_timeout"
    assert_well_formed(timed_out, current)
    assert_well_formed(changed, current)
    assert (changed["user"], changed["state"], changed["device_id"]) == ("bob", "timeout", None)
    assert shape(inbox.take("carol")) == [("call.user_state_changed", "bob", "timeout")]
    assert shape(inbox.take("alice")) == [("call.user_state_changed", "bob", "timeout")]


def test_ending_tells_everyone_and_cancels_whoever_still_rings(
    client_for: Any, inbox: Inbox
) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    inbox.forget("alice", "bob", "carol")
    after = ok(client_for("alice"), call["id"], "end", extended_data="bye")
    cancelled, changed, ended = inbox.take("carol")
    assert cancelled["type"] == "call.invitation_cancelled" and cancelled["operator"] == "alice"
    assert (changed["user"], changed["state"]) == ("carol", "cancelled")
    for name in ("alice", "bob"):
        assert shape(inbox.take(name)) == [
            ("call.user_state_changed", "carol", "cancelled"),
            ("call.ended", None, None),
        ]
    assert_well_formed(ended, after)
    assert (ended["operator"], ended["reason"], ended["extended_data"]) == ("alice", "ended", "bye")


def test_an_automatic_end_has_no_operator(client_for: Any, inbox: Inbox) -> None:
    call = start_call(client_for("alice"), "bob")
    inbox.forget("alice")
    p = Participant.objects.get(call_id=call["id"], user__username="bob")
    Participant.objects.filter(pk=p.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    services.expire(participant_id=p.pk)
    ended = inbox.take("alice")[-1]
    assert ended["type"] == "call.ended"
    assert (ended["operator"], ended["reason"]) == (None, "unanswered")


def test_a_user_added_mid_call_is_invited_and_the_others_see_it(
    client_for: Any, inbox: Inbox
) -> None:
    call = start_call(client_for("alice"), "bob")
    ok(client_for("bob"), call["id"], "accept")
    inbox.forget("alice", "bob")
    res = act(client_for("bob"), call["id"], "invite", invitees=["carol"])
    after = res.json()["call"]
    received, changed = inbox.take("carol")
    assert_well_formed(received, after)
    assert received["inviter"] == "bob"  # who invited *them*, not the call's inviter
    assert (changed["user"], changed["state"]) == ("carol", "inviting")
    assert shape(inbox.take("alice")) == [("call.user_state_changed", "carol", "inviting")]


def test_a_quit_is_seen_by_every_participant_who_ever_rang(client_for: Any, inbox: Inbox) -> None:
    call = start_call(client_for("alice"), "bob", "carol", "dave")
    ok(client_for("bob"), call["id"], "accept")
    ok(client_for("carol"), call["id"], "accept")
    ok(client_for("dave"), call["id"], "reject")
    inbox.forget("alice", "bob", "carol", "dave")
    ok(client_for("carol"), call["id"], "quit")
    for name in ("alice", "bob", "carol", "dave"):
        assert shape(inbox.take(name)) == [("call.user_state_changed", "carol", "quit")]


def test_each_users_frames_of_a_commit_go_as_one_layer_message_in_their_order() -> None:
    """``events.send`` hands the layer one message per user group holding that user's frames,
    each the event's own JSON (made once, however many users get it)."""
    call = {"id": "c", "participants": [{"user": "é"}]}
    timeout = {"type": "call.invitation_timeout", "call_id": "c", "call": call}
    ended = {"type": "call.ended", "reason": "unanswered", "call_id": "c", "call": call}
    sent = events.call_event_messages([("user.2", timeout), ("user.1", ended), ("user.2", ended)])
    assert [group for group, _ in sent] == ["user.2", "user.1"]
    assert all(message["type"] == "call.event" for _, message in sent)
    texts = {group: message["texts"] for group, message in sent}
    assert [json.loads(t) for t in texts["user.2"]] == [timeout, ended]
    assert [json.loads(t) for t in texts["user.1"]] == [ended]
    assert texts["user.1"][0] is texts["user.2"][1]
