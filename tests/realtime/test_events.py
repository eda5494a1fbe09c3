"""/ws/ delivers every call event of API.md to the right devices, with the full call snapshot."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from invitations import events
from invitations.models import Participant, ParticipantState
from tests.callflow import states
from tests.realtime.support import (
    Devices,
    accept,
    cancel,
    end,
    invite,
    reject,
    timer_worker,
)

pytestmark = pytest.mark.django_db(transaction=True)


def assert_call_event(event: dict[str, Any], call_id: str) -> None:
    assert event["call_id"] == call_id
    assert event["call"]["id"] == call_id
    assert {"inviter", "state", "participants", "end_reason"} <= set(event["call"])


async def test_session_ready_is_first_and_lists_what_rings_for_me(
    users: dict[str, Any], devices: Devices
) -> None:
    # Given an invitation sent while bob had no socket
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call
    # When bob connects
    bob = await devices(users["bob"], "bob-phone")
    # Then session.ready comes first, with the ringing call and no current call
    ready = bob.ready
    assert ready["type"] == "session.ready"
    assert ready["user"] == "bob" and ready["device_id"] == "bob-phone"
    assert [c["id"] for c in ready["incoming"]] == [call["id"]]
    assert ready["current"] is None
    # and alice, whose call it is, sees it as current
    alice = await devices(users["alice"])
    assert alice.ready["incoming"] == []
    assert alice.ready["current"]["id"] == call["id"]
    assert alice.device_id.startswith("srv-")


async def test_invitation_reaches_every_device_of_the_invitee_and_the_inviter_sees_inviting(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"], "a1")
    phone = await devices(users["bob"], "phone")
    laptop = await devices(users["bob"], "laptop")

    call = (await invite(inviter=users["alice"], invitees=["bob"], extended_data="hi")).call

    for bob in (phone, laptop):
        received = await bob.next("call.invitation_received")
        assert_call_event(received, call["id"])
        assert received["inviter"] == "alice"
        assert received["extended_data"] == "hi"
        assert received["deadline"]
        changed = await bob.next("call.user_state_changed")
        assert (changed["user"], changed["state"], changed["device_id"]) == (
            "bob",
            "inviting",
            None,
        )
    changed = await alice.next("call.user_state_changed")
    assert_call_event(changed, call["id"])
    assert (changed["user"], changed["state"]) == ("bob", "inviting")
    await alice.nothing()


async def test_ack_moves_to_received_and_everyone_sees_the_acting_device(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"])
    phone = await devices(users["bob"], "phone")
    laptop = await devices(users["bob"], "laptop")
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call
    await alice.next("call.user_state_changed")
    for d in (phone, laptop):
        await d.next("call.invitation_received")
        await d.next("call.user_state_changed")

    await phone.send({"type": "call.ack", "call_id": call["id"]})

    for d in (alice, phone, laptop):
        changed = await d.next("call.user_state_changed")
        assert (changed["user"], changed["state"], changed["device_id"]) == (
            "bob",
            "received",
            "phone",
        )
        assert states(changed["call"])["bob"] == "received"
    # A second ack (the other device) is a no-op: no event, no error.
    await laptop.send({"type": "call.ack", "call_id": call["id"]})
    await laptop.ping()
    await alice.nothing()


async def test_answer_on_one_device_reaches_the_other_devices_with_its_device_id(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"])
    phone = await devices(users["bob"], "phone")
    laptop = await devices(users["bob"], "laptop")
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call
    for d in (phone, laptop):
        await d.next("call.invitation_received")
        await d.next("call.user_state_changed")
    await alice.next("call.user_state_changed")

    await accept(actor=users["bob"], call_id=call["id"], device_id="phone")

    for d in (laptop, phone, alice):
        changed = await d.next("call.user_state_changed")
        assert (changed["user"], changed["state"], changed["device_id"]) == (
            "bob",
            "accepted",
            "phone",
        )
        assert changed["call"]["state"] == "ongoing"


async def test_reject_ends_a_one_to_one_call_as_unanswered(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"])
    bob = await devices(users["bob"], "phone")
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call
    await bob.next("call.invitation_received")
    await bob.next("call.user_state_changed")
    await alice.next("call.user_state_changed")

    await reject(actor=users["bob"], call_id=call["id"], reason="busy-elsewhere", device_id="phone")

    for d in (alice, bob):
        changed = await d.next("call.user_state_changed")
        assert (changed["state"], changed["reason"], changed["device_id"]) == (
            "rejected",
            "busy-elsewhere",
            "phone",
        )
        ended = await d.next("call.ended")
        assert_call_event(ended, call["id"])
        assert (ended["reason"], ended["operator"]) == ("unanswered", "bob")
        assert ended["call"]["state"] == "ended"


async def test_cancel_tells_the_invitee_who_cancelled_and_ends_the_call(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"])
    bob = await devices(users["bob"])
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call
    await bob.next("call.invitation_received")
    await bob.next("call.user_state_changed")
    await alice.next("call.user_state_changed")

    await cancel(actor=users["alice"], call_id=call["id"], extended_data="sorry")

    cancelled = await bob.next("call.invitation_cancelled")
    assert_call_event(cancelled, call["id"])
    assert (cancelled["operator"], cancelled["extended_data"]) == ("alice", "sorry")
    for d in (bob, alice):
        changed = await d.next("call.user_state_changed")
        assert (changed["user"], changed["state"]) == ("bob", "cancelled")
        ended = await d.next("call.ended")
        assert (ended["reason"], ended["operator"]) == ("cancelled", "alice")
    await alice.nothing()  # the inviter gets no invitation_cancelled of their own


async def test_timeout_reaches_the_invitee_through_the_timer_worker(
    users: dict[str, Any], devices: Devices
) -> None:
    alice = await devices(users["alice"])
    bob = await devices(users["bob"])
    async with timer_worker():
        call = (await invite(inviter=users["alice"], invitees=["bob"], timeout=1)).call
        await bob.next("call.invitation_received")
        await bob.next("call.user_state_changed")
        await alice.next("call.user_state_changed")

        timed_out = await bob.next("call.invitation_timeout", timeout=4)
        assert_call_event(timed_out, call["id"])
        assert states(timed_out["call"])["bob"] == "timeout"
        for d in (bob, alice):
            changed = await d.next("call.user_state_changed")
            assert (changed["user"], changed["state"]) == ("bob", "timeout")
            assert (await d.next("call.ended"))["reason"] == "unanswered"


async def test_end_reaches_every_participant(users: dict[str, Any], devices: Devices) -> None:
    alice = await devices(users["alice"])
    bob = await devices(users["bob"])
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call
    await accept(actor=users["bob"], call_id=call["id"])
    await bob.next("call.invitation_received")
    for d in (alice, bob):
        await d.next("call.user_state_changed")  # inviting
        await d.next("call.user_state_changed")  # accepted

    await end(actor=users["bob"], call_id=call["id"], extended_data="bye")

    for d in (alice, bob):
        ended = await d.next("call.ended")
        assert (ended["operator"], ended["reason"], ended["extended_data"]) == (
            "bob",
            "ended",
            "bye",
        )


async def test_a_user_rejected_as_busy_never_rings_and_gets_no_events(
    users: dict[str, Any], devices: Devices
) -> None:
    carol = await devices(users["carol"])
    first = (await invite(inviter=users["carol"], invitees=["dave"])).call
    await carol.next("call.user_state_changed")

    second = (await invite(inviter=users["alice"], invitees=["carol", "bob"])).call
    assert states(second)["carol"] == "rejected"

    await carol.nothing(0.5)
    assert first["id"] != second["id"]


async def test_reconnect_resyncs_what_was_missed_while_offline(
    users: dict[str, Any], devices: Devices
) -> None:
    bob = await devices(users["bob"], "phone")
    await bob.close()
    call = (await invite(inviter=users["alice"], invitees=["bob"])).call

    again = await devices(users["bob"], "phone")
    assert [c["id"] for c in again.ready["incoming"]] == [call["id"]]
    await again.send({"type": "call.ack", "call_id": call["id"]})
    assert (await again.next("call.user_state_changed"))["state"] == "received"
    await accept(actor=users["bob"], call_id=call["id"], device_id="phone")
    await again.close()

    third = await devices(users["bob"], "phone")
    assert third.ready["incoming"] == []
    assert third.ready["current"]["id"] == call["id"]
    assert states(third.ready["current"])["bob"] == "accepted"
    p = await database_sync_to_async(Participant.objects.get)(
        call_id=call["id"], user__username="bob"
    )
    assert (p.state, p.device_id) == (ParticipantState.ACCEPTED, "phone")


async def test_a_commits_frames_for_one_user_arrive_in_order_and_the_older_shape_still_works(
    users: dict[str, Any], devices: Devices
) -> None:
    """A commit's frames for one user travel as one layer message (``texts``); each reaches the
    socket as its own frame, in order. A worker not yet restarted in a rolling deploy still
    sends one frame per message (``text``): that reaches the socket too."""
    bob = await devices(users["bob"], "phone")
    layer = get_channel_layer()
    group = events.user_group(users["bob"].pk)
    first = {"type": "call.invitation_timeout", "call_id": "c", "n": 1}
    second = {"type": "call.ended", "call_id": "c", "n": 2}
    (sent,) = events.call_event_messages([(group, first), (group, second)])
    await layer.group_send(*sent)
    assert [await bob.raw(), await bob.raw()] == [first, second]
    await layer.group_send(group, {"type": "call.event", "text": events.frame(second)})
    assert await bob.raw() == second
