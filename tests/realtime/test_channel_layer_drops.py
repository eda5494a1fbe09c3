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
