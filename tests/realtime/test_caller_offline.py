"""Caller offline: a ringing call ends when the inviter has had no device for the whole grace.

Counted from the later of the call's creation and the inviter's last device's disconnect; a
caller who never had a socket (REST only) counts from the call's creation.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from invitations.models import Call
from tests.realtime.support import Devices, accept, invite, timer_worker

pytestmark = pytest.mark.django_db(transaction=True)

GRACE = 0.6


@pytest.fixture(autouse=True)
def small_grace(settings: Any) -> None:
    settings.CALLSITE = {**settings.CALLSITE, "CALLER_OFFLINE_GRACE": GRACE}


async def call_state(call_id: str) -> tuple[str, str | None]:
    c = await database_sync_to_async(Call.objects.get)(pk=call_id)
    return c.state, c.end_reason


async def test_the_call_ends_when_the_callers_last_device_stays_away(
    users: dict[str, Any], devices: Devices
) -> None:
    async with timer_worker():
        alice = await devices(users["alice"], "a1")
        bob = await devices(users["bob"])
        call = (await invite(inviter=users["alice"], invitees=["bob"])).call
        await bob.next("call.invitation_received")
        await bob.next("call.user_state_changed")

        await alice.close()

        cancelled = await bob.next("call.invitation_cancelled", timeout=GRACE + 3)
        assert cancelled["operator"] is None
        assert (await bob.next("call.user_state_changed"))["state"] == "cancelled"
        ended = await bob.next("call.ended")
        assert (ended["reason"], ended["operator"]) == ("caller_offline", None)
        assert await call_state(call["id"]) == ("ended", "caller_offline")


async def test_a_caller_who_comes_back_within_the_grace_keeps_the_call_ringing(
    users: dict[str, Any], devices: Devices
) -> None:
    async with timer_worker():
        alice = await devices(users["alice"], "a1")
        call = (await invite(inviter=users["alice"], invitees=["bob"])).call
        await alice.close()
        await asyncio.sleep(GRACE / 3)
        back = await devices(users["alice"], "a1")
        assert back.ready["current"]["id"] == call["id"]
        await asyncio.sleep(GRACE + 0.5)
        assert await call_state(call["id"]) == ("ringing", None)


async def test_one_device_of_several_leaving_changes_nothing(
    users: dict[str, Any], devices: Devices
) -> None:
    async with timer_worker():
        phone = await devices(users["alice"], "phone")
        await devices(users["alice"], "laptop")
        call = (await invite(inviter=users["alice"], invitees=["bob"])).call
        await phone.close()
        await asyncio.sleep(GRACE + 0.5)
        assert await call_state(call["id"]) == ("ringing", None)


async def test_a_rest_only_caller_gets_the_grace_from_the_calls_creation(
    users: dict[str, Any], devices: Devices
) -> None:
    async with timer_worker():
        bob = await devices(users["bob"])
        await invite(inviter=users["alice"], invitees=["bob"])
        await bob.next("call.invitation_received")
        ended = await bob.next(
            "call.ended",
            skip=("presence.changed", "call.user_state_changed", "call.invitation_cancelled"),
            timeout=GRACE + 3,
        )
        assert ended["reason"] == "caller_offline"


async def test_a_rest_only_caller_who_connects_within_the_grace_keeps_the_call(
    users: dict[str, Any], devices: Devices
) -> None:
    async with timer_worker():
        call = (await invite(inviter=users["alice"], invitees=["bob"])).call
        await devices(users["alice"])
        await asyncio.sleep(GRACE + 0.5)
        assert await call_state(call["id"]) == ("ringing", None)


async def test_an_ongoing_call_never_ends_caller_offline_the_caller_just_leaves(
    users: dict[str, Any], devices: Devices
) -> None:
    # Caller offline is a rule for ringing calls. Once someone accepted, a caller whose devices
    # stay away leaves like any participant (test_participant_offline.py): here only bob
    # remains, so the call ends all_left.
    async with timer_worker():
        alice = await devices(users["alice"])
        call = (await invite(inviter=users["alice"], invitees=["bob"])).call
        await accept(actor=users["bob"], call_id=call["id"])
        await alice.close()
        await asyncio.sleep(GRACE / 2)
        assert await call_state(call["id"]) == ("ongoing", None)
        await asyncio.sleep(GRACE + 0.5)
        assert await call_state(call["id"]) == ("ended", "all_left")
