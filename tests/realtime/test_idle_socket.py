"""Spec: a socket that waited quietly still gets its invitation (the embedded in-memory layer).

The layer's periodic sweep once removed every empty channel queue, including the one an idle
socket was waiting on; the next message then went to a new queue nobody read, and the socket
never heard of anything again while it stayed open.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer

from tests.realtime.support import Devices, invite

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_socket_idle_past_the_layer_sweep_still_rings(
    users: dict[str, Any], devices: Devices
) -> None:
    layer = get_channel_layer()
    bob = await devices(users["bob"])
    await asyncio.sleep(layer.cleanup_interval + 0.5)
    await invite(inviter=users["alice"], invitees=["bob"])
    assert (await bob.next("call.invitation_received"))["inviter"] == "alice"
