"""Channel layers that never lose a message silently.

Channels' layers are at-most-once: a message to a full channel, or one that waited longer than
``expiry``, is dropped, and the stock layers drop it without a word (the in-memory layer's
``group_send`` swallows ``ChannelFull``; channels-redis logs over-capacity groups at INFO).
API.md lets a client heal a lost event through ``session.ready``, but an invitation lost on a
live socket is the worst failure this product can have, so every drop here is counted
(``callsite_channel_layer_dropped_total``) and logged as a warning with the channel or group.

The in-memory layer of the embedded default also changes two behaviours of Channels' own:

- Channels removes a channel from *every* group as soon as one of its messages expires. A live
  socket that fell 60 s behind (a burst of frames, a slow client) then silently stopped getting
  its own invitations for as long as it stayed open. Our consumers leave their groups on
  disconnect, so a channel in a group is a live socket: expiry drops the old message only.
- Channels walks every channel queue and group membership on each ``receive``; every socket
  waits in ``receive``, so delivery cost grew with the number of open sockets. Expiry only has
  to happen eventually: the sweep runs at most once a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from callsite.metrics import LAYER_DROPPED as DROPPED
from callsite.metrics import LAYER_SEND_FAILURES

logger = logging.getLogger(__name__)


def record_drop(reason: str, count: int, where: str) -> None:
    DROPPED.labels(reason=reason).inc(count)
    logger.warning("channel layer dropped %d message(s) (%s) for %s", count, reason, where)


@contextmanager
def counting_failures(operation: str) -> Iterator[None]:
    """Count a send that raises (Redis unreachable, a full channel), then let it raise: the
    caller decides what a failed send means, as before."""
    try:
        yield
    except Exception as exc:
        LAYER_SEND_FAILURES.labels(operation=operation, error=type(exc).__name__).inc()
        raise


class CountingInMemoryChannelLayer(InMemoryChannelLayer):
    cleanup_interval = 1.0
    _last_cleanup = 0.0

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        with counting_failures("send"):
            await super().send(channel, message)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.require_valid_group_name(group)
        self._clean_expired()
        full = []
        # Sent one by one: ``send`` never awaits, so tasks would only add overhead. Channels'
        # own send: a full member is a drop of this group_send, not a failed send.
        for channel in list(self.groups.get(group, {})):
            try:
                await InMemoryChannelLayer.send(self, channel, message)
            except ChannelFull:
                full.append(channel)
        if full:
            record_drop("full", len(full), f"group {group} ({', '.join(full[:5])})")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_cleanup < self.cleanup_interval:
            return
        self._last_cleanup = now
        wall = time.time()
        for channel, queue in list(self.channels.items()):
            expired = 0
            while not queue.empty() and queue._queue[0][0] < wall:
                queue.get_nowait()
                expired += 1
            if expired:
                record_drop("expired", expired, f"channel {channel}")
                # Only a queue that held messages: an empty one may have a receiver waiting on it.
                if queue.empty():
                    self.channels.pop(channel, None)
        cutoff = int(wall) - self.group_expiry
        for members in self.groups.values():
            for name, joined in list(members.items()):
                if joined and joined < cutoff:
                    members.pop(name, None)


class _OverCapacityLog(logging.Filter):
    """channels-redis reports a group_send's drops only as an INFO record; count them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "%s of %s channels over capacity in group %s" and record.args:
            dropped, _, group = tuple(record.args)
            record_drop("full", int(str(dropped)), f"group {group}")
            return False  # record_drop has logged it, as a warning
        return True


_redis_filter = _OverCapacityLog()


# The core layer's ``send`` in one round trip instead of four (ZREMRANGEBYSCORE, ZCOUNT, ZADD,
# EXPIRE, each awaited in turn): the same steps in the same order, which also tells us how many
# expired messages it removed, so those drops are counted too. KEYS[1] the channel's key; ARGV:
# the oldest score kept, the capacity, the score (now), the message, the key's expiry.
_SEND = """
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[2]) then
    return {expired, 0}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {expired, 1}
"""


class CountingRedisChannelLayer(RedisChannelLayer):
    """channels-redis' core layer, with group_send's over-capacity drops counted and logged.

    ``send`` (the workers' channels: timers, push wake-ups) is one Lua script, and counts the
    expired messages it sweeps from a queue that newer sends kept alive. A queue nobody sent to
    for ``expiry`` seconds, and messages that expire in a group member's queue, are removed by
    Redis (the key's expiry) or by channels-redis' group_send script, unseen by any client, so
    those alone are not counted.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        logger_ = logging.getLogger("channels_redis.core")
        if _redis_filter not in logger_.filters:
            logger_.addFilter(_redis_filter)
        # The INFO record must reach the filter even when the logger's level would hide it.
        if logger_.getEffectiveLevel() > logging.INFO:
            logger_.setLevel(logging.INFO)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        with counting_failures("send"):
            await self._send(channel, message)

    async def _send(self, channel: str, message: dict[str, Any]) -> None:
        """channels-redis' ``send`` (4.3.0), its four commands as one script."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        name = channel
        if "!" in channel:  # a process-local channel: the message says which
            message = {**message, "__asgi_channel__": channel}
            name = self.non_local_name(channel)
            index = self.consistent_hash(channel)
        else:
            index = next(self._send_index_generator)
        now = time.time()
        expired, sent = await self.connection(index).eval(
            _SEND,
            1,
            self.prefix + name,
            int(now) - int(self.expiry),
            self.get_capacity(channel),
            now,
            self.serialize(message),
            int(self.expiry),
        )
        if expired:
            record_drop("expired", int(expired), f"channel {channel}")
        if not sent:
            raise ChannelFull()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        with counting_failures("group_send"):
            await super().group_send(group, message)


class CountingRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """channels-redis' PubSub layer (production's ``default``), its failed sends counted.

    Redis keeps nothing for it: a message goes at once to the processes subscribed to its
    channel or group and waits in their memory until the socket's consumer takes it. So it has
    no capacity to overflow and no expiry, and nothing to count but sends Redis refused. A
    message reaches only processes subscribed when it is published: fine for sockets (one that
    reconnects resyncs through ``session.ready``), not for worker channels, whose messages must
    wait for a worker that is restarting; those use the core layer (``WORKER_CHANNEL_LAYER``).
    """

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        with counting_failures("send"):
            await self._get_layer().send(channel, message)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        with counting_failures("group_send"):
            await self._get_layer().group_send(group, message)

    async def group_send_many(self, sends: list[tuple[str, dict[str, Any]]]) -> None:
        """Several group_sends, in order, in one round trip per Redis shard instead of one each.

        A call event goes to every participant's group at once (``events.send``). Uses the
        shard's own connection and lock, as ``group_send`` does (channels-redis 4.3.0).
        """
        layer = self._get_layer()
        by_shard: dict[Any, list[tuple[str, bytes]]] = {}
        for group, message in sends:
            name = layer._get_group_channel_name(group)
            by_shard.setdefault(layer._get_shard(name), []).append((name, self.serialize(message)))
        with counting_failures("group_send"):
            for shard, items in by_shard.items():
                async with shard._lock:
                    shard._ensure_redis()
                    pipe = shard._redis.pipeline(transaction=False)
                    for name, data in items:
                        pipe.publish(name, data)
                    await pipe.execute()

    async def discard_channel(self, channel: str) -> None:
        """Unsubscribe a channel made with ``new_channel`` that nobody will receive on again.

        The layer unsubscribes a channel only when a ``receive`` on it is cancelled (a consumer
        closing); a channel used once (the readiness probe's) would otherwise stay subscribed.
        """
        layer = self._get_layer()
        if layer.channels.pop(channel, None) is not None:
            await layer._get_shard(channel).unsubscribe(channel)
