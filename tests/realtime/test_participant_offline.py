"""A participant whose devices all go away leaves the call after the grace period.

Without this a closed tab or a dead phone would keep its user ``accepted`` in a call that never
ends, and busy for ever. A reload or a network change reconnects well within the grace and
keeps the call.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from invitations import selectors, services
from invitations.models import Call, CallEvent, Participant
from tests.realtime.support import Devices, accept, invite, timer_worker

pytestmark = pytest.mark.django_db(transaction=True)

GRACE = 0.6


@pytest.fixture(autouse=True)
def small_grace(settings: Any) -> None:
    settings.CALLSITE = {**settings.CALLSITE, "CALLER_OFFLINE_GRACE": GRACE}


async def until(device: Any, type: str, timeout: float = GRACE + 3, **fields: Any) -> dict:
    """Skip earlier events until one of ``type`` with these field values arrives."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"no {type} {fields} within {timeout} s"
        event = await device.raw(left)
        if event["type"] == type and all(event.get(k) == v for k, v in fields.items()):
            return event


async def states(call_id: str) -> tuple[str, str | None, dict[str, str]]:
    def read() -> tuple[str, str | None, dict[str, str]]:
        c = Call.objects.get(pk=call_id)
        ps = {p.user.username: p.state for p in c.participants.select_related("user")}
        return c.state, c.end_reason, ps

    return await database_sync_to_async(read)()


async def ongoing_call(users: dict[str, Any], devices: Devices, *names: str) -> dict[str, Any]:
    """alice calls the others, each accepts from a device of their own."""
    call = (await invite(inviter=users["alice"], invitees=list(names))).call
    for name in names:
        await accept(actor=users[name], call_id=call["id"], device_id=f"{name}-1")
    return call


async def test_a_closed_tab_in_a_one_to_one_call_ends_it_after_the_grace(
    users: dict[str, Any], devices: Devices
) -> None:
    async with timer_worker():
        # Given alice and bob talking, each with one device
        alice = await devices(users["alice"], "alice-1")
        bob = await devices(users["bob"], "bob-1")
        call = await ongoing_call(users, devices, "bob")
        # When bob's only device goes away and does not come back
        await bob.close()
        # Then after the grace alice learns that bob left, and the call ends
        await until(alice, "call.user_state_changed", user="bob", state="quit")
        ended = await until(alice, "call.ended")
        assert (ended["reason"], ended["operator"]) == ("all_left", None)
        assert await states(call["id"]) == (
            "ended",
            "all_left",
            {"alice": "accepted", "bob": "quit"},
        )
        # And both are free to call again
        free = await database_sync_to_async(selectors.availability)(
            users["alice"].pk, [users["alice"].pk, users["bob"].pk]
        )
        assert free.busy == set()


async def test_a_reload_within_the_grace_keeps_the_call(
    users: dict[str, Any], devices: Devices
) -> None:
    async with timer_worker():
        await devices(users["alice"], "alice-1")
        bob = await devices(users["bob"], "bob-1")
        call = await ongoing_call(users, devices, "bob")
        await bob.close()
        await asyncio.sleep(GRACE / 3)
        back = await devices(users["bob"], "bob-1")
        assert back.ready["current"]["id"] == call["id"]
        await asyncio.sleep(GRACE + 0.5)
        assert await states(call["id"]) == (
            "ongoing",
            None,
            {"alice": "accepted", "bob": "accepted"},
        )


async def test_in_a_group_call_the_others_go_on(users: dict[str, Any], devices: Devices) -> None:
    async with timer_worker():
        alice = await devices(users["alice"], "alice-1")
        await devices(users["bob"], "bob-1")
        carol = await devices(users["carol"], "carol-1")
        call = await ongoing_call(users, devices, "bob", "carol")
        await carol.close()
        left = await until(alice, "call.user_state_changed", user="carol", state="quit")
        assert left["device_id"] is None
        assert await states(call["id"]) == (
            "ongoing",
            None,
            {"alice": "accepted", "bob": "accepted", "carol": "quit"},
        )
        quits = await database_sync_to_async(
            lambda: list(CallEvent.objects.filter(call_id=call["id"], kind="quit").values("data"))
        )()
        assert quits == [{"data": {"because": "offline"}}]


async def test_an_offline_inviter_of_a_ringing_call_ends_it_as_caller_offline_once(
    users: dict[str, Any], devices: Devices
) -> None:
    async with timer_worker():
        alice = await devices(users["alice"], "alice-1")
        bob = await devices(users["bob"], "bob-1")
        call = (await invite(inviter=users["alice"], invitees=["bob"])).call
        await alice.close()
        ended = await until(bob, "call.ended")
        assert ended["reason"] == "caller_offline"
        await asyncio.sleep(0.3)  # let the second timer of the same moment fire too
        assert await states(call["id"]) == (
            "ended",
            "caller_offline",
            {"alice": "accepted", "bob": "cancelled"},
        )
        kinds = await database_sync_to_async(
            lambda: list(
                CallEvent.objects.filter(call_id=call["id"]).values_list("kind", flat=True)
            )
        )()
        assert kinds.count("ended") == 1 and "quit" not in kinds


async def test_the_offline_timer_is_idempotent_and_ignores_a_returned_device(
    users: dict[str, Any], devices: Devices
) -> None:
    await devices(users["alice"], "alice-1")
    bob = await devices(users["bob"], "bob-1")
    call = await ongoing_call(users, devices, "bob")
    await bob.close()
    p = await database_sync_to_async(Participant.objects.get)(call_id=call["id"], user=users["bob"])
    assert p.offline_deadline is not None
    await devices(users["bob"], "bob-2")  # came back
    await asyncio.sleep(GRACE + 0.2)
    expire = database_sync_to_async(services.expire_participant_offline)
    assert await expire(participant_id=p.pk) is False
    assert (await states(call["id"]))[2]["bob"] == "accepted"
