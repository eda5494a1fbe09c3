"""With Redis, sockets and workers hear through different layers (settings/channel_layer.py).

Call events go to the sockets' groups through PubSub, which hands a message only to processes
subscribed at that moment. A timer or a push wake-up must instead wait for a worker that is
restarting, so the workers' channels are on the core layer, which keeps the message in Redis.
Both layers here are built from the real settings, on the real Redis (``production_layers``,
tests/realtime/conftest.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from invitations import events


async def test_a_timer_sent_while_no_worker_listens_reaches_the_worker_that_starts_later(
    production_layers: None, settings: Any
) -> None:
    sockets, workers = get_channel_layer(), get_channel_layer(settings.WORKER_CHANNEL_LAYER)
    assert type(sockets).__name__ == "CountingRedisPubSubChannelLayer"
    assert type(workers).__name__ == "CountingRedisChannelLayer"
    socket = await sockets.new_channel()
    await sockets.group_add(events.user_group(7), socket)
    timer = {"type": "timer.schedule", "kind": "call_timeout", "id": 42, "at": 1.0}
    wake = {"type": "push.wake"}
    try:
        # Published from a request thread, as services do after commit; no worker listens yet.
        await sync_to_async(events.send)(
            [(events.user_group(7), {"type": "call.cancelled", "call_id": "c"})],
            [timer],
            [(settings.PUSH_CHANNEL, wake)],
        )
        event = await asyncio.wait_for(sockets.receive(socket), 5)
        assert event["type"] == "call.event" and '"call.cancelled"' in event["texts"][0]

        # The worker starts now, and still finds both waiting for it.
        got = await asyncio.wait_for(workers.receive(settings.TIMER_CHANNEL), 5)
        assert got == timer
        assert await asyncio.wait_for(workers.receive(settings.PUSH_CHANNEL), 5) == wake
    finally:
        await sockets.flush()
        await workers.flush()
        await workers.close_pools()


async def test_the_same_timer_on_the_sockets_pubsub_layer_would_be_lost(
    production_layers: None, settings: Any
) -> None:
    """Why the workers do not share the sockets' layer: PubSub drops what nobody hears yet."""
    sockets = get_channel_layer()
    try:
        await sockets.send(settings.TIMER_CHANNEL, {"type": "timer.schedule", "id": 1})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sockets.receive(settings.TIMER_CHANNEL), 1)
    finally:
        await sockets.flush()


async def test_call_events_reach_each_participants_sockets_in_order_across_processes(
    production_layers: None, settings: Any
) -> None:
    """A service's events go out as one pipeline of publishes (``group_send_many``), one
    message per participant holding their frames; each participant's sockets, on this process
    or another, get theirs, in the order sent."""
    here = get_channel_layer()
    there = type(here)(**settings.CHANNEL_LAYERS["default"]["CONFIG"])  # another process
    sockets = {}
    try:
        for layer, user in ((here, 1), (here, 2), (there, 2), (there, 3)):
            channel = await layer.new_channel()
            await layer.group_add(events.user_group(user), channel)
            sockets[(id(layer), user)] = (layer, channel)
        messages = [
            (events.user_group(user), {"type": kind, "n": n})
            for n, kind in enumerate(["call.invitation_received", "call.cancelled"])
            for user in (1, 2, 3)
        ]
        await sync_to_async(events.send)(messages, [])
        for (_, user), (layer, channel) in sockets.items():
            got = (await asyncio.wait_for(layer.receive(channel), 5))["texts"]
            assert ['"n":0' in text for text in got] == [True, False], user
            assert all('"type":"call.' in text for text in got)
        for layer, channel in sockets.values():
            with pytest.raises(TimeoutError):  # nothing for anyone else
                await asyncio.wait_for(layer.receive(channel), 0.3)
    finally:
        await here.flush()
        await there.flush()

