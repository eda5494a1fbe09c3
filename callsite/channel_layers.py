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


def record_send_failure(operation: str, exc: BaseException) -> None:
    LAYER_SEND_FAILURES.labels(operation=operation, error=type(exc).__name__).inc()


class CountingInMemoryChannelLayer(InMemoryChannelLayer):
    cleanup_interval = 1.0
    _last_cleanup = 0.0

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await super().send(channel, message)
        except Exception as exc:  # counted, then the caller decides, as before
            record_send_failure("send", exc)
            raise

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


class CountingRedisChannelLayer(RedisChannelLayer):
    """channels-redis' core layer, with group_send's over-capacity drops counted and logged.

    Messages that expire in Redis (a receiver more than ``expiry`` seconds behind) are removed
    by Redis itself, unseen by any client, so those alone cannot be counted here.
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
        try:
            await super().send(channel, message)
        except Exception as exc:  # e.g. Redis unreachable, or the channel full
            record_send_failure("send", exc)
            raise

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        try:
            await super().group_send(group, message)
        except Exception as exc:
            record_send_failure("group_send", exc)
            raise


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
        try:
            await self._get_layer().send(channel, message)
        except Exception as exc:
            record_send_failure("send", exc)
            raise

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        try:
            await self._get_layer().group_send(group, message)
        except Exception as exc:
            record_send_failure("group_send", exc)
            raise

    async def discard_channel(self, channel: str) -> None:
        """Unsubscribe a channel made with ``new_channel`` that nobody will receive on again.

        The layer unsubscribes a channel only when a ``receive`` on it is cancelled (a consumer
        closing); a channel used once (the readiness probe's) would otherwise stay subscribed.
        """
        layer = self._get_layer()
        if layer.channels.pop(channel, None) is not None:
            await layer._get_shard(channel).unsubscribe(channel)
