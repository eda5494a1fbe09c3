"""Timeouts without Celery: a Channels worker on the ``call-timers`` channel.

Services send ``{"type": "timer.schedule", "kind", "id", "at"}`` after commit. The worker keeps the
pending deadlines in a heap and sleeps until the next one, then calls the idempotent service
(``expire``, ``expire_caller_offline``, ``expire_presence``...). On start, and every
``TIMER_RESCAN_SECONDS`` as a safety net for messages the channel layer dropped, it reloads every
pending deadline from the database, so a deadline that passed while no worker ran fires at once.
Several workers are safe: the services move rows with conditional updates, so exactly one wins.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.consumer import AsyncConsumer
from channels.layers import get_channel_layer
from channels.routing import ChannelNameRouter
from channels.worker import Worker
from django.conf import settings
from django.db import close_old_connections

from callsite import heartbeat, metrics

from . import selectors, services, validation
from .realtime.dispatch import DirectDispatch

logger = logging.getLogger(__name__)

Entry = tuple[float, str, Any]  # (unix time, kind, id)

_EXPIRERS = {
    "invitation": lambda id_: services.expire(participant_id=int(id_)),
    "caller_offline": lambda id_: services.expire_caller_offline(call_id=validation.call_id(id_)),
    "participant_offline": lambda id_: services.expire_participant_offline(participant_id=int(id_)),
    "presence_offline": lambda id_: services.expire_presence(user_id=int(id_)),
}


def _fire(kind: str, id_: Any) -> bool:
    try:
        return bool(_EXPIRERS[kind](id_))
    except Exception:  # one bad row must not stop every other timer
        logger.exception("timer %s %s failed", kind, id_)
        return False
    finally:
        close_old_connections()


# Due invitations and presence graces expire this many to a transaction. Small enough that
# one batch holds SQLite's single write lock, or the locks of its calls, only briefly (a batch
# of 250 takes tens of ms of CPU); large enough that a burst pays few lock waits and event loop
# hand-offs: at 100, the expiry thread spent 28% of a 10,000-timer burst waiting for the write
# lock and 16% for the loop (bench/README.md, "Issue 9, third round").
BATCH = 250


# The kinds that expire many to a transaction, by the ids of their rows. A burst of either is
# common: invitations of a busy minute, the presence graces of a disconnect wave (a deploy).
_BATCHED: dict[str, Callable[[list[int]], list[int]]] = {
    "invitation": lambda ids: services.expire_many(participant_ids=ids),
    "presence_offline": lambda ids: services.expire_presence_many(user_ids=ids),
}


def _fire_batch(kind: str, ids: list[int]) -> list[int]:
    """Expire due timers of one kind in one transaction; one by one if the batch itself fails."""
    try:
        return _BATCHED[kind](ids)
    except Exception:  # e.g. a deadlock or a bad row: never lose the other timers of the batch
        logger.exception("timer batch of %d %s failed; firing one by one", len(ids), kind)
        return [pk for pk in ids if _fire(kind, pk)]
    finally:
        close_old_connections()


class Scheduler:
    """A heap of deadlines and one task that sleeps until the earliest."""

    def __init__(self, rescan_seconds: float | None = None) -> None:
        self.heap: list[Entry] = []
        self.keys: set[tuple[str, str, float]] = set()
        self.wakeup = asyncio.Event()
        self.rescan_seconds = (
            settings.CALLSITE["TIMER_RESCAN_SECONDS"] if rescan_seconds is None else rescan_seconds
        )
        self.fired = 0
        # Called with the seconds past its deadline of every timer this scheduler won. Nothing in
        # production listens; tests and benchmarks install their own counter here.
        self.on_fired: Callable[[float], None] | None = None

    def add(self, at: float, kind: str, id_: Any) -> None:
        key = (kind, str(id_), at)
        if kind not in _EXPIRERS or key in self.keys:
            return
        self.keys.add(key)
        heapq.heappush(self.heap, (at, kind, id_))
        if self.heap[0][0] == at:
            self.wakeup.set()

    async def load(self) -> None:
        rows = await sync_to_async(_pending_deadlines, thread_sensitive=False)()
        for at, kind, id_ in rows:
            self.add(at, kind, id_)
        logger.info("timer worker watching %d deadlines", len(self.heap))

    async def run(self) -> None:
        await self.load()
        next_scan = time.monotonic() + self.rescan_seconds
        while True:
            now = time.time()
            due: list[Entry] = []
            while self.heap and self.heap[0][0] <= now:
                entry = heapq.heappop(self.heap)
                self.keys.discard((entry[1], str(entry[2]), entry[0]))
                due.append(entry)
            if due:
                await self._fire_all(due)
                continue
            if time.monotonic() >= next_scan:
                await self.load()
                next_scan = time.monotonic() + self.rescan_seconds
            sleep = self.heap[0][0] - time.time() if self.heap else self.rescan_seconds
            sleep = max(0.0, min(sleep, next_scan - time.monotonic()))
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=sleep)
            except TimeoutError:
                pass

    def _won(self, late: float) -> None:
        self.fired += 1
        metrics.TIMER_LATENESS.observe(late)
        if self.on_fired is not None:
            self.on_fired(late)

    async def _fire_all(self, due: list[Entry]) -> None:
        # An expire mostly waits on the database, so on PostgreSQL several run at once: one at a
        # time, a burst of deadlines would queue behind each other's round trips. SQLite takes
        # one writer at a time, and there parallel firing would only add lock waits.
        # Invitations and presence graces go in batches, one transaction each, so that a burst does
        # not pay one transaction apiece (bench/README.md, "Notes moved from code comments").
        limit = asyncio.Semaphore(_concurrency())

        async def fire_one(at: float, kind: str, id_: Any) -> None:
            async with limit:
                fired = await sync_to_async(_fire, thread_sensitive=False)(kind, id_)
            if fired:  # counted here, on the event loop, so no two threads race on it
                self._won(time.time() - at)

        async def fire_batch(kind: str, batch: list[Entry]) -> None:
            # A re-invited participant (a user back and gone again) may have an old and a new
            # deadline due: the later counts.
            at_of: dict[int, float] = {}
            for at, _, id_ in batch:
                at_of[int(id_)] = max(at, at_of.get(int(id_), at))
            async with limit:
                fired = await sync_to_async(_fire_batch, thread_sensitive=False)(kind, list(at_of))
            now = time.time()
            for pk in fired:
                self._won(now - at_of[pk])

        by_kind = {kind: [e for e in due if e[1] == kind] for kind in _BATCHED}
        others = [e for e in due if e[1] not in _BATCHED]
        await asyncio.gather(
            *(
                fire_batch(kind, entries[i : i + BATCH])
                for kind, entries in by_kind.items()
                for i in range(0, len(entries), BATCH)
            ),
            *(fire_one(*entry) for entry in others),
        )


def _concurrency() -> int:
    from django.db import connection

    configured = settings.CALLSITE.get("TIMER_CONCURRENCY")
    if configured:
        return max(1, int(configured))
    return 1 if connection.vendor == "sqlite" else settings.TIMER_CONCURRENCY


def _pending_deadlines() -> list[Entry]:
    try:
        heartbeat.beat()  # readiness of every server counts on a recent one (callsite/heartbeat)
        return selectors.pending_deadlines()
    finally:
        close_old_connections()


# The schedulers running in this process; tests and benchmarks read their figures.
RUNNING: list[Scheduler] = []


class TimerConsumer(DirectDispatch, AsyncConsumer):
    """The application instance for the ``call-timers`` channel: one per worker process."""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.scheduler = Scheduler()
        RUNNING.append(self.scheduler)
        task = asyncio.ensure_future(self.scheduler.run())
        try:
            await super().__call__(scope, receive, send)
        finally:
            task.cancel()
            RUNNING.remove(self.scheduler)

    async def timer_schedule(self, message: dict[str, Any]) -> None:
        try:
            at = float(message["at"])
            kind = str(message["kind"])
            id_ = message["id"]
        except (KeyError, TypeError, ValueError):
            logger.warning("ignoring malformed timer message %r", message)
            return
        self.scheduler.add(at, kind, id_)


class EagerWorker(Worker):
    """A Channels worker that starts its application instances at once.

    The stock worker creates an instance on the first message of a channel; the timer worker
    must load pending deadlines from the database when it starts, not when a message arrives.
    """

    async def handle(self) -> None:
        for channel in self.channels:
            self.get_or_create_application_instance(
                channel, {"type": "channel", "channel": channel}
            )
        await super().handle()


def timer_application() -> ChannelNameRouter:
    """The worker channels: call-timers, and push-delivery beside it (invitations/push)."""
    from .push.delivery import PushConsumer

    return ChannelNameRouter(
        {
            settings.TIMER_CHANNEL: TimerConsumer.as_asgi(),
            settings.PUSH_CHANNEL: PushConsumer.as_asgi(),
        }
    )


async def run_embedded_worker() -> None:
    """Run the timer worker, and the push delivery worker, inside this process (embedded)."""
    worker = EagerWorker(
        application=timer_application(),
        channels=[settings.TIMER_CHANNEL, settings.PUSH_CHANNEL],
        channel_layer=get_channel_layer(settings.WORKER_CHANNEL_LAYER),
    )
    await worker.arun()
