"""The delivery worker: sends due push rows, records every attempt, retries until the deadline.

It runs beside the timer worker: inside the server process in the embedded default (on the
``push-delivery`` channel of the same in-process worker), and as ``manage.py runworker
push-delivery`` in production. The rows are the truth: a wake-up message after each commit only
saves a wait, and the worker rescans the table on start and every ``PUSH_RESCAN_SECONDS``, so
pushes owed when a worker died go out when the next one starts.

For each due row, in order:
1. claim it (``SELECT ... FOR UPDATE SKIP LOCKED`` where the database has it; a lease pushes
   ``next_attempt_at`` ahead so a crashed worker's claim comes back), counting the attempt;
2. drop it if it is no longer wanted: a ring whose invitee stopped ringing (cancelled), a
   deferred ring a socket of that device acked, anything past ``not_after`` (expired: never
   delivered late);
3. send it through the provider's sender with ``expires_at = not_after``;
4. record the outcome on the row and as a ``push`` CallEvent on the call's timeline: SENT;
   RETRY with jittered exponential backoff (at least ``Retry-After``) while the next try still
   lands before ``not_after``, else FAILED; DEAD removes the device (unless it registered again
   after an APNs 410's timestamp); CONFIG_ERROR is logged as an error and keeps the device.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from channels.consumer import AsyncConsumer
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Min
from django.utils import timezone

from ..models import RINGING_STATES, CallEvent, ParticipantState
from ..realtime.dispatch import DirectDispatch
from . import registry
from .models import DeliveryState, Provider, PushDelivery, PushDevice, PushKind
from .senders.base import Outcome, PushMessage, PushResult, Sender

logger = logging.getLogger(__name__)

# A claimed row comes back to the pool after this long if its worker never recorded a result.
LEASE = timedelta(seconds=60)
BATCH = 100


@dataclass(frozen=True)
class Job:
    delivery_id: int
    attempt: int
    message: PushMessage
    not_after: datetime


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before try ``attempt + 1``: full-jitter exponential, at least ``retry_after``."""
    cap = min(settings.PUSH_RETRY_MAX, settings.PUSH_RETRY_BASE * 2 ** max(0, attempt - 1))
    wait = random.uniform(cap / 2, cap)
    return max(wait, retry_after or 0.0)


# --- the database side (sync, each in its own transaction) ------------------------------------


def claim_due(now: datetime, limit: int = BATCH) -> list[Job]:
    """Claim up to ``limit`` due rows; drop those no longer wanted. Returns what to send."""
    try:
        with transaction.atomic():
            return _claim(now, limit)
    finally:
        close_old_connections()


def _claim(now: datetime, limit: int) -> list[Job]:
    due = PushDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True, of=("self",))
    rows = list(
        due.select_related("push_device", "participant").order_by("next_attempt_at")[:limit]
    )
    if not rows:
        return []
    expired, cancelled, jobs = [], [], []
    acked_on = _acking_devices([r for r in rows if r.unless_acked])
    for row in rows:
        p, device = row.participant, row.push_device
        if row.not_after <= now:
            expired.append(row)
        elif device is None:
            cancelled.append((row, "the device was removed"))
        elif row.kind == PushKind.RING and (
            p.state not in RINGING_STATES or p.deadline is None or p.deadline <= now
        ):
            cancelled.append((row, f"the invitation is {p.state}"))
        elif row.unless_acked and row.device_id in acked_on.get(row.participant_id, ()):
            cancelled.append((row, "acked on this device's socket"))
        else:
            jobs.append(row)
    if expired:
        PushDelivery.objects.filter(pk__in=[r.pk for r in expired]).update(
            state=DeliveryState.EXPIRED, last_detail="past its deadline: not sent"
        )
        CallEvent.objects.bulk_create([_event(r, "expired", None, None, "") for r in expired])
    for row, why in cancelled:
        PushDelivery.objects.filter(pk=row.pk).update(
            state=DeliveryState.CANCELLED, last_detail=why
        )
    if jobs:
        PushDelivery.objects.filter(pk__in=[r.pk for r in jobs]).update(
            attempts=F("attempts") + 1, next_attempt_at=now + LEASE
        )
    return [_job(r) for r in jobs]


def _acking_devices(rows: list[PushDelivery]) -> dict[int, set[str]]:
    """Deferred rings: per participant, the devices whose socket acked (``received`` events).

    Only the first ack of an invitation is written (later ones are no-ops by API.md), so a
    second device that acked too may still get the push; the app shows one call per call id.
    """
    if not rows:
        return {}
    acked: dict[int, set[str]] = {}
    subjects = {(r.call_id, r.participant.user_id): r.participant_id for r in rows}
    for call_id, user_id, data in CallEvent.objects.filter(
        call_id__in={c for c, _ in subjects},
        subject_id__in={u for _, u in subjects},
        kind=CallEvent.Kind.RECEIVED,
    ).values_list("call_id", "subject_id", "data"):
        pid = subjects.get((call_id, user_id))
        if pid is not None:
            acked.setdefault(pid, set()).add(str((data or {}).get("device_id", "")))
    # Still inviting means no socket acked at all.
    for r in rows:
        if r.participant.state == ParticipantState.INVITING:
            acked.pop(r.participant_id, None)
    return acked


def _job(row: PushDelivery) -> Job:
    device = row.push_device
    assert device is not None
    provider = row.provider
    if row.kind == PushKind.STOP and provider == Provider.APNS_VOIP:
        provider = Provider.APNS  # never a stop over VoIP (triggers.py never writes one)
    message = PushMessage(
        provider=provider,
        kind=row.kind,
        payload=row.payload,
        expires_at=row.not_after,
        collapse_id=str(row.call_id),
        token=device.token if device.provider != Provider.WEBPUSH else "",
        subscription=device.subscription if device.provider == Provider.WEBPUSH else {},
        app_id=device.app_id,
        device_id=device.device_id,
    )
    return Job(row.pk, row.attempts + 1, message, row.not_after)


def _event(
    row: PushDelivery,
    outcome: str,
    status: int | None,
    latency_ms: float | None,
    detail: str,
    started: datetime | None = None,
) -> CallEvent:
    return CallEvent(
        call_id=row.call_id,
        kind=CallEvent.Kind.PUSH,
        subject_id=row.participant.user_id if row.participant_id else None,
        data={
            "push": row.kind,
            "reason": row.reason or None,
            "provider": row.provider,
            "device_id": row.device_id,
            "outcome": outcome,
            "status": status,
            "latency_ms": latency_ms,
            # When the request left (the row is written after its answer came back).
            "started_at": started.isoformat() if started else None,
            "attempt": row.attempts,
            "detail": detail,
        },
    )


def record(
    job: Job,
    result: PushResult,
    latency_ms: float,
    now: datetime,
    started: datetime | None = None,
) -> str:
    """Write one attempt's outcome; returns the row's new state."""
    try:
        with transaction.atomic():
            return _record(job, result, latency_ms, now, started)
    finally:
        close_old_connections()


def _record(
    job: Job, result: PushResult, latency_ms: float, now: datetime, started: datetime | None
) -> str:
    row = (
        PushDelivery.objects.select_related("participant", "push_device")
        .filter(pk=job.delivery_id)
        .first()
    )
    if row is None:
        return "gone"
    detail = (result.detail or "")[:200]
    changes: dict[str, Any] = {
        "last_status": result.status,
        "last_detail": detail,
        "latency_ms": latency_ms,
    }
    if result.outcome == Outcome.SENT:
        changes.update(state=DeliveryState.SENT, sent_at=now)
        if row.push_device_id:
            PushDevice.objects.filter(pk=row.push_device_id).update(last_used_at=now)
    elif result.outcome == Outcome.RETRY:
        at = now + timedelta(seconds=backoff(job.attempt, result.retry_after))
        if at < row.not_after:
            changes.update(next_attempt_at=at)
        else:
            changes.update(state=DeliveryState.FAILED, last_detail=f"{detail} (deadline: no retry)")
    elif result.outcome == Outcome.DEAD:
        changes.update(state=DeliveryState.DEAD)
        _remove_dead(row.push_device, result.dead_since)
    elif result.outcome == Outcome.CONFIG_ERROR:
        logger.error(
            "push: %s refused our credentials (status %s: %s); fix its settings. "
            "The device is kept.",
            row.provider,
            result.status,
            detail,
        )
        changes.update(state=DeliveryState.FAILED)
    else:
        changes.update(state=DeliveryState.FAILED)
    # Conditional: a stop may have withdrawn this ring while it was in flight; keep its word.
    PushDelivery.objects.filter(pk=row.pk, state=DeliveryState.PENDING).update(**changes)
    row.attempts = job.attempt
    CallEvent.objects.bulk_create(
        [_event(row, str(result.outcome), result.status, latency_ms, detail, started)]
    )
    return str(changes.get("state", DeliveryState.PENDING))


def _remove_dead(device: PushDevice | None, dead_since: datetime | None) -> None:
    if device is None:
        return
    gone = PushDevice.objects.filter(pk=device.pk)
    if dead_since is not None:
        # APNs: the token was valid again after its 410 if the device registered since then.
        gone = gone.filter(registered_at__lte=dead_since)
    if gone.delete()[0]:
        logger.info("push: removed dead %s device %s", device.provider, device.device_id)


def next_due() -> datetime | None:
    try:
        value: datetime | None = PushDelivery.objects.filter(state=DeliveryState.PENDING).aggregate(
            at=Min("next_attempt_at")
        )["at"]
        return value
    finally:
        close_old_connections()


# --- the worker (async) -----------------------------------------------------------------------


class DeliveryWorker:
    """Claims due rows and sends them, up to ``PUSH_CONCURRENCY`` at once."""

    def __init__(self, senders: dict[str, Sender] | None = None) -> None:
        self.senders = registry.build_senders() if senders is None else senders
        self.wakeup = asyncio.Event()
        self.limit = asyncio.Semaphore(max(1, settings.PUSH_CONCURRENCY))
        self.inflight: set[asyncio.Task[None]] = set()
        self.sent = 0  # pushes the providers accepted; tests and benchmarks read it

    def wake(self) -> None:
        self.wakeup.set()

    async def run_once(self) -> int:
        """Claim what is due now and send it all; returns how many were sent."""
        jobs = await sync_to_async(claim_due, thread_sensitive=False)(timezone.now())
        await asyncio.gather(*(self._send(job) for job in jobs))
        return len(jobs)

    async def run(self) -> None:
        while True:
            self.wakeup.clear()
            jobs = await sync_to_async(claim_due, thread_sensitive=False)(timezone.now())
            for job in jobs:
                await self.limit.acquire()  # back-pressure: claim no more than we can send
                task = asyncio.ensure_future(self._send(job, release=True))
                self.inflight.add(task)
                task.add_done_callback(self.inflight.discard)
            if len(jobs) == BATCH:
                continue
            await self._sleep()

    async def _sleep(self) -> None:
        at = await sync_to_async(next_due, thread_sensitive=False)()
        wait = settings.PUSH_RESCAN_SECONDS
        if at is not None:
            wait = min(wait, max(0.0, (at - timezone.now()).total_seconds()))
        if wait <= 0:
            await asyncio.sleep(0.01)  # due rows are all claimed by others or in flight
            return
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout=wait)
        except TimeoutError:
            pass

    async def _send(self, job: Job, release: bool = False) -> None:
        try:
            started = timezone.now()
            result, latency_ms = await self._attempt(job)
            state = await sync_to_async(record, thread_sensitive=False)(
                job, result, latency_ms, timezone.now(), started
            )
            if result.outcome == Outcome.SENT:
                self.sent += 1
            if state == DeliveryState.PENDING:
                self.wake()  # a retry: the sleep is recomputed from the table
        except Exception:
            logger.exception("push: delivery %s failed unexpectedly", job.delivery_id)
        finally:
            if release:
                self.limit.release()

    async def _attempt(self, job: Job) -> tuple[PushResult, float]:
        sender = self.senders.get(job.message.provider)
        if sender is None:
            return PushResult(Outcome.FAILED, detail="provider not configured"), 0.0
        left = (job.not_after - timezone.now()).total_seconds()
        if left <= 0:
            return PushResult(Outcome.RETRY, detail="deadline reached before sending"), 0.0
        started = time.monotonic()
        try:
            # A push still in flight at the deadline would land late: give up on it then.
            result = await asyncio.wait_for(sender.send(job.message), timeout=left)
        except TimeoutError:
            result = PushResult(Outcome.RETRY, detail="no answer before the deadline")
        except Exception as exc:  # a sender bug must not stop the worker; retried like a 5xx
            logger.exception("push: %s sender raised", job.message.provider)
            result = PushResult(Outcome.RETRY, detail=f"{type(exc).__name__}: {exc}"[:200])
        return result, round((time.monotonic() - started) * 1000, 2)

    async def close(self) -> None:
        if self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)
        await registry.close_all(self.senders)


# The workers running in this process; tests and benchmarks read their figures.
RUNNING: list[DeliveryWorker] = []


class PushConsumer(DirectDispatch, AsyncConsumer):
    """The application instance for the ``push-delivery`` channel: one per worker process.

    With no provider configured it does nothing at all (not even a query): push is off.
    """

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.worker: DeliveryWorker | None = None
        task = None
        if registry.enabled():
            self.worker = DeliveryWorker()
            RUNNING.append(self.worker)
            task = asyncio.ensure_future(self.worker.run())
            logger.info(
                "push worker sending through %s", ", ".join(registry.configured_providers())
            )
        try:
            await super().__call__(scope, receive, send)
        finally:
            if task is not None:
                task.cancel()
            if self.worker is not None:
                RUNNING.remove(self.worker)
                await self.worker.close()

    async def push_wake(self, message: dict[str, Any]) -> None:
        if self.worker is not None:
            self.worker.wake()
