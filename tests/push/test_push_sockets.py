"""The ack grace with real /ws/ sockets: a device whose socket shows the invitation (call.ack)
is not pushed; one whose socket stays silent past PUSH_ACK_GRACE is (iOS keeps a suspended
app's socket looking open)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from invitations import services
from invitations.models import Participant
from invitations.push import devices
from tests.realtime.support import Devices

from .conftest import Gateway, deliver

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_silent_socket_gets_the_push_after_the_grace_an_acking_one_does_not(
    users: dict[str, Any], push_on: Gateway
) -> None:
    opened = Devices()
    try:
        for name in ("bob", "carol"):
            await database_sync_to_async(devices.register)(
                user=users[name],
                device_id="phone",
                provider="fcm",
                token=f"t-{name}",
                subscription={},
            )
        await opened(users["bob"], "phone")  # open, but it never acks
        carol = await opened(users["carol"], "phone")
        result = await database_sync_to_async(services.invite)(
            inviter=users["alice"], invitees=["bob", "carol"]
        )
        call_id = result.call["id"]
        await carol.send({"type": "call.ack", "call_id": call_id})  # carol's phone shows it
        for _ in range(100):  # until the ack is committed
            state = await database_sync_to_async(
                lambda: Participant.objects.get(user=users["carol"]).state
            )()
            if state == "received":
                break
            await asyncio.sleep(0.02)
        assert state == "received"

        assert await asyncio.to_thread(deliver) == 0  # within the grace: nobody yet
        await asyncio.sleep(0.6)
        await asyncio.to_thread(deliver)
        assert [r.device["token"] for r in push_on.received] == ["t-bob"]
    finally:
        await opened.close_all()
