"""Presence fan-out across server processes, on the real Redis channel layer.

Production's sockets use the PubSub layer, or the core one with ``CHANNEL_LAYER_BACKEND=core``:
the test runs on both. Two layer instances on one Redis stand for two server processes (each has
its own client prefix, so its own channels), each with its own presence hub. One change costs one
message per process however many sockets of that process watch the user, and reaches no one
else.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from callsite.channel_layers import CountingRedisChannelLayer, CountingRedisPubSubChannelLayer
from invitations import presence
from invitations.presence import PRESENCE_GROUP, changed_event
from invitations.realtime.presence import PresenceHub
from tests.realtime.redis_settings import REDIS_URL


class Socket:
    """Stands for a device consumer: what the hub hands it, in order."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    async def presence_changed(self, event: dict[str, Any]) -> None:
        self.got.append(event)


def make_layer(kind: str, prefix: str) -> Any:
    # As settings.py configures them for REDIS_URL (socket_timeout=None: receivers wait for long).
    hosts = [{"address": REDIS_URL, "socket_timeout": None}]
    if kind == "pubsub":
        return CountingRedisPubSubChannelLayer(hosts=hosts, prefix=prefix)
    return CountingRedisChannelLayer(hosts=hosts, prefix=prefix, expiry=60)


def group_members(kind: str, prefix: str, group: str) -> int:
    """How many channels (core) or processes (PubSub) Redis holds in the group."""
    r = redis.Redis.from_url(REDIS_URL)
    if kind == "pubsub":
        return int(r.pubsub_numsub(f"{prefix}__group__{group}")[0][1])
    return int(r.zcard(f"{prefix}:group:{group}"))


async def until(check: Any, timeout: float = 5) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < end, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_one_message_per_process_reaches_every_watching_socket_and_no_other(
    kind: str,
) -> None:
    prefix = f"callsite-test-presence-{uuid.uuid4().hex[:8]}"
    a_layer, b_layer = make_layer(kind, prefix), make_layer(kind, prefix)
    a, b = PresenceHub(a_layer), PresenceHub(b_layer)
    on_a = [Socket() for _ in range(5)]
    on_b = [Socket() for _ in range(3)]
    elsewhere = Socket()  # on B, watching someone else
    sockets_waiting: list[asyncio.Future[Any]] = []
    try:
        for s in on_a:
            await a.watch(s, ["bob", "dave"])
        for s in on_b:
            await b.watch(s, ["bob"])
        await b.watch(elsewhere, ["carol"])
        assert a.channel != b.channel
        # Each process' sockets wait on their own channels meanwhile, as in a real server.
        for lay in (a_layer, b_layer):
            sockets_waiting.append(asyncio.ensure_future(lay.receive(await lay.new_channel())))

        # A service in any process publishes bob's change once.
        await a_layer.group_send(PRESENCE_GROUP, changed_event("bob", True))

        await until(lambda: all(s.got for s in on_a + on_b))
        await asyncio.sleep(0.2)  # anything extra would arrive by now
        for s in on_a + on_b:
            assert s.got == [{"type": "presence.changed", "user": "bob", "online": True}]
        assert elsewhere.got == []
        assert (a.received, b.received) == (1, 1)
        assert (a.delivered, b.delivered) == (5, 3)

        # When a process' last watcher leaves, it leaves the group: nothing piles up for it.
        for s in on_b + [elsewhere]:
            await b.watch(s, [])
        assert b.channel is None
        await a_layer.group_send(PRESENCE_GROUP, changed_event("bob", False))
        await until(lambda: all(len(s.got) == 2 for s in on_a))
        assert b.received == 1
        assert group_members(kind, prefix, PRESENCE_GROUP) == 1  # A's one channel
    finally:
        for waiting in sockets_waiting:
            waiting.cancel()
        for hub, sockets in ((a, on_a), (b, on_b + [elsewhere])):
            for s in sockets:
                await hub.forget(s)
        for lay in (a_layer, b_layer):
            await lay.flush()
            if kind == "core":
                await lay.close_pools()


async def test_a_presence_change_published_from_a_thread_reaches_the_watching_sockets(
    production_layers: None,
) -> None:
    """``presence.publish`` runs in request threads (and hands the publish to the loop), here
    with the layers production builds."""
    layer = get_channel_layer()
    hub, watching, other = PresenceHub(layer), Socket(), Socket()
    try:
        await hub.watch(watching, ["bob"])
        await hub.watch(other, ["carol"])
        await sync_to_async(presence.publish)("bob", True)
        await until(lambda: bool(watching.got))
        assert watching.got == [{"type": "presence.changed", "user": "bob", "online": True}]
        assert other.got == []
    finally:
        await hub.forget(watching)
        await hub.forget(other)
        await layer.flush()
