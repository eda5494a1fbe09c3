"""Spec: the channel layer never loses a message silently.

Every message a layer drops (a full receiver, a message that waited past ``expiry``) is counted
in ``callsite_channel_layer_dropped_total`` and logged as a warning; and a live socket that fell
behind keeps its group memberships, so its later invitations still reach it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import pytest
from channels.exceptions import ChannelFull

from callsite.channel_layers import (
    DROPPED,
    LAYER_SEND_FAILURES,
    CountingInMemoryChannelLayer,
    CountingRedisChannelLayer,
)

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")


def dropped(reason: str) -> float:
    return DROPPED.labels(reason=reason)._value.get()


async def test_a_group_send_to_a_full_channel_is_counted_and_logged(caplog) -> None:
    layer = CountingInMemoryChannelLayer(capacity=1)
    await layer.group_add("user.1", "inbox.one")
    await layer.group_add("user.1", "inbox.two")
    await layer.send("inbox.one", {"type": "fill"})
    before = dropped("full")

    with caplog.at_level(logging.WARNING, logger="callsite.channel_layers"):
        await layer.group_send("user.1", {"type": "call.event"})

    assert dropped("full") == before + 1
    assert "inbox.one" in caplog.text and "full" in caplog.text
    # The channel with room got it.
    assert (await layer.receive("inbox.two"))["type"] == "call.event"


async def test_an_expired_message_is_counted_and_its_channel_keeps_its_groups(caplog) -> None:
    """Channels' own layer removed such a channel from every group: the socket went deaf."""
    layer = CountingInMemoryChannelLayer(expiry=0)
    layer.cleanup_interval = 0
    await layer.group_add("user.1", "inbox.slow")
    await layer.send("inbox.slow", {"type": "old"})
    before = dropped("expired")

    with caplog.at_level(logging.WARNING, logger="callsite.channel_layers"):
        layer._clean_expired()

    assert dropped("expired") == before + 1
    assert "inbox.slow" in caplog.text
    layer.expiry = 60
    await layer.group_send("user.1", {"type": "call.event"})
    assert (await layer.receive("inbox.slow"))["type"] == "call.event"


async def test_a_direct_send_to_a_full_channel_still_raises() -> None:
    layer = CountingInMemoryChannelLayer(capacity=1)
    await layer.send("call-timers", {"type": "timer.schedule"})
    with pytest.raises(ChannelFull):
        await layer.send("call-timers", {"type": "timer.schedule"})


async def test_redis_over_capacity_drops_are_counted_and_logged(caplog) -> None:
    layer = CountingRedisChannelLayer(
        hosts=[REDIS_URL], prefix=f"drops-{uuid.uuid4().hex[:8]}", capacity=1
    )
    try:
        channel = await layer.new_channel()
        await layer.group_add("user.1", channel)
        await layer.send(channel, {"type": "fill"})
        before = dropped("full")

        with caplog.at_level(logging.WARNING, logger="callsite.channel_layers"):
            await layer.group_send("user.1", {"type": "call.event"})

        assert dropped("full") == before + 1
        assert "group user.1" in caplog.text
    finally:
        await layer.flush()
        await layer.close_pools()


async def test_a_receiver_waiting_on_an_empty_channel_survives_the_sweep() -> None:
    layer = CountingInMemoryChannelLayer()
    layer.cleanup_interval = 0
    waiting = asyncio.ensure_future(layer.receive("inbox.idle"))
    await asyncio.sleep(0)
    layer._clean_expired()
    await layer.send("inbox.idle", {"type": "call.event"})
    assert (await asyncio.wait_for(waiting, 2))["type"] == "call.event"


def redis_layer(**config: object) -> CountingRedisChannelLayer:
    return CountingRedisChannelLayer(
        hosts=[REDIS_URL], prefix=f"drops-{uuid.uuid4().hex[:8]}", **config
    )


async def test_redis_sends_reach_worker_and_process_local_channels() -> None:
    """``send`` is our one-script version of channels-redis' four commands: same deliveries."""
    layer = redis_layer()
    try:
        local = await layer.new_channel()
        assert "!" in local
        await layer.send("call-timers", {"type": "timer.schedule", "id": 1})
        await layer.send("call-timers", {"type": "timer.schedule", "id": 2})
        await layer.send(local, {"type": "call.event", "text": "é"})
        got = [await asyncio.wait_for(layer.receive("call-timers"), 2) for _ in range(2)]
        assert [m["id"] for m in got] == [1, 2]  # in order
        assert await asyncio.wait_for(layer.receive(local), 2) == {
            "type": "call.event",
            "text": "é",
        }
    finally:
        await layer.flush()
        await layer.close_pools()


async def test_a_redis_send_to_a_full_channel_raises_and_is_counted() -> None:
    layer = redis_layer(capacity=2)
    failures = LAYER_SEND_FAILURES.labels(operation="send", error="ChannelFull")
    try:
        await layer.send("call-timers", {"type": "timer.schedule", "id": 1})
        await layer.send("call-timers", {"type": "timer.schedule", "id": 2})
        before = failures._value.get()
        with pytest.raises(ChannelFull):
            await layer.send("call-timers", {"type": "timer.schedule", "id": 3})
        assert failures._value.get() == before + 1
        # Nothing was added: the two that fit are still there, and only they.
        got = [await asyncio.wait_for(layer.receive("call-timers"), 2) for _ in range(2)]
        assert [m["id"] for m in got] == [1, 2]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive("call-timers"), 0.5)
    finally:
        await layer.flush()
        await layer.close_pools()


async def test_messages_a_redis_send_sweeps_as_expired_are_counted_and_logged(caplog) -> None:
    """A worker behind by more than ``expiry``: the next send removes what waited too long.

    (A queue nobody sends to for ``expiry`` seconds goes whole: its key expires in Redis.)
    """
    layer = redis_layer(expiry=2)
    try:
        await layer.send("push-delivery", {"type": "push.wake", "n": "old"})
        await asyncio.sleep(1.5)
        await layer.send("push-delivery", {"type": "push.wake", "n": "newer"})
        await asyncio.sleep(1.6)  # the first is now more than 2 s old, the second not
        before = dropped("expired")
        with caplog.at_level(logging.WARNING, logger="callsite.channel_layers"):
            await layer.send("push-delivery", {"type": "push.wake", "n": "fresh"})
        assert dropped("expired") == before + 1
        assert "channel push-delivery" in caplog.text and "expired" in caplog.text
        got = [await asyncio.wait_for(layer.receive("push-delivery"), 2) for _ in range(2)]
        assert [m["n"] for m in got] == ["newer", "fresh"]
    finally:
        await layer.flush()
        await layer.close_pools()
