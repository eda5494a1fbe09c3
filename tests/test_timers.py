"""Timeouts without Celery: the call-timers worker keeps its promises.

- a ringing invitee times out within 1 s of their deadline;
- a deadline that passed while no worker ran fires as soon as one starts;
- two workers never expire the same invitee twice;
- expiring is idempotent, and a stale timer never touches a newer invitation.

The worker here is the real one (``EagerWorker`` + ``TimerConsumer`` on the channel layer, or a bare
``Scheduler``) running in the test's event loop; expiring happens in its worker threads with
their own database connections, exactly as under ``manage.py runworker call-timers``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from invitations import services, timers
from invitations.models import CallEvent, Participant
from tests.callflow import who

pytestmark = pytest.mark.django_db(transaction=True)

ONE_SECOND = timedelta(seconds=1)


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await database_sync_to_async(fn)(*args, **kwargs)


async def invite(inviter: Any, *names: str, timeout: int = 1) -> dict[str, Any]:
    result = await call(services.invite, inviter=inviter, invitees=list(names), timeout=timeout)
    return result.call


def timeout_events() -> list[tuple[int, datetime]]:
    """(participant id, when it timed out) for every timeout in the timeline."""
    rows = CallEvent.objects.filter(kind="timeout").values_list(
        "call_id", "subject_id", "created_at"
    )
    ids = {(p.call_id, p.user_id): p.pk for p in Participant.objects.all()}
    return [(ids[(c, u)], at) for c, u, at in rows]


async def wait_until(check: Callable[[], Awaitable[bool]], limit: float) -> float:
    """Poll until check() holds; returns the seconds it took, fails after ``limit``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < limit, "timed out waiting"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def fired(*schedulers: timers.Scheduler, count: int, limit: float = 2) -> None:
    """Wait until the schedulers have counted ``count`` wins between them: a scheduler counts a
    win once its expiring thread returns, a moment after the commit the database shows."""

    async def check() -> bool:
        return sum(s.fired for s in schedulers) >= count

    await wait_until(check, limit)
    assert sum(s.fired for s in schedulers) == count, [s.fired for s in schedulers]


def pending_count(ids: list[int]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not await call(
            Participant.objects.filter(pk__in=ids, state__in=("inviting", "received")).exists
        )

    return check


@pytest.fixture
async def start_worker() -> AsyncIterator[Callable[[], Awaitable[timers.Scheduler]]]:
    """start_worker() -> the Scheduler of a real EagerWorker on ``call-timers``, in this loop."""
    before = asyncio.all_tasks()

    async def start() -> timers.Scheduler:
        worker = timers.EagerWorker(
            application=timers.timer_application(),
            channels=[settings.TIMER_CHANNEL],
            channel_layer=get_channel_layer(),
        )
        known = list(timers.RUNNING)
        asyncio.ensure_future(worker.arun())
        for _ in range(100):  # the instance starts at once, without waiting for a message
            await asyncio.sleep(0.01)
            fresh = [s for s in timers.RUNNING if s not in known]
            if fresh:
                return fresh[0]
        raise AssertionError("the timer worker did not start")

    yield start
    # Stop everything the workers started (listeners, application instances, schedulers).
    current = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() - before if t is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


async def make_users(prefix: str, count: int) -> list[Any]:
    model = get_user_model()
    return [await call(model.objects.create_user, f"{prefix}{i:03d}") for i in range(count)]


# --- on time --------------------------------------------------------------------------------------


async def test_a_timeout_fires_within_one_second_of_its_deadline(
    users: dict[str, Any], start_worker: Any
) -> None:
    scheduler = await start_worker()
    lateness: list[float] = []  # seconds past the deadline of each win
    scheduler.on_fired = lateness.append
    # given invitations ringing for 1 and 2 seconds, sent while the worker runs
    first = await invite(users["alice"], "bob", "carol", timeout=1)
    second = await invite(users["dave"], "erin", timeout=2)
    deadlines = {
        (c["id"], p["user"]): datetime.fromisoformat(p["deadline"])
        for c in (first, second)
        for p in c["participants"]
        if p["deadline"]
    }
    assert len(deadlines) == 3
    ids = await call(
        lambda: list(
            Participant.objects.filter(deadline__isnull=False).values_list("pk", flat=True)
        )
    )
    # then each times out after its deadline, and less than a second after it
    await wait_until(pending_count(ids), limit=5)
    for c in (first, second):
        rows = await call(
            lambda c=c: list(
                CallEvent.objects.filter(call_id=c["id"], kind="timeout").values_list(
                    "subject__username", "created_at"
                )
            )
        )
        for name, at in rows:
            late = at - deadlines[(c["id"], name)]
            assert timedelta(0) <= late < ONE_SECOND, (name, late)
    await fired(scheduler, count=3)
    assert all(0 <= late < 1 for late in lateness), lateness
    # and the call ends unanswered as the last invitee times out
    ended = await call(lambda: CallEvent.objects.filter(kind="ended").count())
    assert ended == 2


async def test_a_busy_shared_sync_thread_does_not_delay_new_deadlines(
    users: dict[str, Any], start_worker: Any
) -> None:
    """In the embedded default the timer worker shares its process with every consumer, whose
    database work queues on one shared sync thread. New deadlines must not wait behind it."""
    from asgiref.sync import sync_to_async

    scheduler = await start_worker()
    # given the process's shared sync thread is busy for 2.5 s (a slow consumer, say)
    busy = asyncio.ensure_future(sync_to_async(time.sleep, thread_sensitive=True)(2.5))
    await asyncio.sleep(0.05)
    # when an invitation is made from another thread (as each HTTP request runs in its own)
    result = await sync_to_async(services.invite, thread_sensitive=False)(
        inviter=users["alice"], invitees=["bob"], timeout=1
    )
    deadline = datetime.fromisoformat(who(result.call, "bob")["deadline"])
    p = await sync_to_async(Participant.objects.get, thread_sensitive=False)(
        call_id=result.call["id"], user=users["bob"]
    )

    async def timed_out() -> bool:
        return await sync_to_async(
            Participant.objects.filter(pk=p.pk, state="timeout").exists, thread_sensitive=False
        )()

    # then it still times out within a second of its deadline
    await wait_until(timed_out, limit=4)
    await fired(scheduler, count=1)
    at = await sync_to_async(
        lambda: CallEvent.objects.get(kind="timeout").created_at, thread_sensitive=False
    )()
    assert timedelta(0) <= at - deadline < ONE_SECOND, at - deadline
    await busy


async def test_nothing_fires_before_the_deadline(users: dict[str, Any], start_worker: Any) -> None:
    await start_worker()
    call_ = await invite(users["alice"], "bob", timeout=2)
    await asyncio.sleep(1.5)
    state = await call(
        lambda: Participant.objects.get(call_id=call_["id"], user=users["bob"]).state
    )
    assert state == "inviting"


async def test_an_answered_invitation_is_left_alone_by_its_timer(
    users: dict[str, Any], start_worker: Any
) -> None:
    scheduler = await start_worker()
    c = await invite(users["alice"], "bob", timeout=1)
    await call(services.accept, actor=users["bob"], call_id=c["id"])
    await asyncio.sleep(1.4)
    assert scheduler.fired == 0
    assert await call(lambda: CallEvent.objects.filter(kind="timeout").count()) == 0


# --- when no worker ran ---------------------------------------------------------------------------


async def test_a_deadline_that_passed_while_no_worker_ran_fires_as_soon_as_one_starts(
    users: dict[str, Any], start_worker: Any
) -> None:
    # given an invitation whose timer message was lost (the worker was down; Redis expired it)
    c = await invite(users["alice"], "bob", timeout=1)
    await get_channel_layer().flush()
    # and whose deadline passes while no worker runs
    await asyncio.sleep(1.3)
    p = await call(Participant.objects.get, call_id=c["id"], user=users["bob"])
    assert p.state == "inviting"
    # when a worker starts, then it finds the deadline in the database and fires at once
    started = time.monotonic()
    await start_worker()
    took = await wait_until(pending_count([p.pk]), limit=3) + (time.monotonic() - started)
    assert took < 0.5, took
    assert [pk for pk, _ in await call(timeout_events)] == [p.pk]


async def test_a_worker_that_starts_early_also_loads_future_deadlines(
    users: dict[str, Any], start_worker: Any
) -> None:
    c = await invite(users["alice"], "bob", timeout=1)
    await get_channel_layer().flush()  # no message: only the database knows
    await start_worker()
    p = await call(Participant.objects.get, call_id=c["id"], user=users["bob"])
    await wait_until(pending_count([p.pk]), limit=3)
    [(_, at)] = await call(timeout_events)
    assert timedelta(0) <= at - p.deadline < ONE_SECOND


async def test_the_rescan_catches_a_timer_message_lost_while_the_worker_runs(
    users: dict[str, Any],
) -> None:
    scheduler = timers.Scheduler(rescan_seconds=0.3)
    task = asyncio.ensure_future(scheduler.run())  # a worker that never reads the channel
    try:
        c = await invite(users["alice"], "bob", timeout=1)
        p = await call(Participant.objects.get, call_id=c["id"], user=users["bob"])
        await wait_until(pending_count([p.pk]), limit=3)
        [(_, at)] = await call(timeout_events)
        assert at - p.deadline < ONE_SECOND
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --- two workers ----------------------------------------------------------------------------------


async def test_two_workers_never_expire_the_same_invitee_twice(users: dict[str, Any]) -> None:
    # given 20 calls ringing with the very same deadline, known to two workers at once
    people = await make_users("t", 40)
    for i in range(0, 40, 2):
        await invite(people[i], people[i + 1].username, timeout=60)
    same = timezone.now() + timedelta(milliseconds=500)
    await call(lambda: Participant.objects.filter(deadline__isnull=False).update(deadline=same))
    ids = await call(
        lambda: list(
            Participant.objects.filter(deadline__isnull=False).values_list("pk", flat=True)
        )
    )
    assert len(ids) == 20
    first, second = timers.Scheduler(rescan_seconds=60), timers.Scheduler(rescan_seconds=60)
    tasks = [asyncio.ensure_future(s.run()) for s in (first, second)]
    try:
        await wait_until(pending_count(ids), limit=5)
        await fired(first, second, count=20)
        await asyncio.sleep(0.3)  # a second win for anyone would be counted by now
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # then each invitee timed out exactly once, and the two workers' wins add up to 20
    expired = [pk for pk, _ in await call(timeout_events)]
    assert sorted(expired) == sorted(ids)
    assert first.fired + second.fired == 20, (first.fired, second.fired)
    assert await call(lambda: CallEvent.objects.filter(kind="ended").count()) == 20


async def test_two_eager_workers_on_one_channel_layer_expire_each_invitee_once(
    users: dict[str, Any], start_worker: Any
) -> None:
    one, two = await start_worker(), await start_worker()
    c = await invite(users["alice"], "bob", "carol", "dave", timeout=1)
    ids = await call(
        lambda: list(
            Participant.objects.filter(call_id=c["id"], role="invitee").values_list("pk", flat=True)
        )
    )
    # the message reached one worker; make sure the other knows the deadlines too
    for s in (one, two):
        await s.load()
    await wait_until(pending_count(ids), limit=4)
    await asyncio.sleep(0.3)
    assert sorted(pk for pk, _ in await call(timeout_events)) == sorted(ids)
    await fired(one, two, count=3)


# --- idempotent -----------------------------------------------------------------------------------


async def test_expire_is_idempotent(users: dict[str, Any]) -> None:
    c = await invite(users["alice"], "bob", "carol", timeout=60)
    p = await call(Participant.objects.get, call_id=c["id"], user=users["bob"])
    await call(
        lambda: Participant.objects.filter(pk=p.pk).update(
            deadline=timezone.now() - timedelta(seconds=1)
        )
    )
    assert await call(services.expire, participant_id=p.pk) is True
    for _ in range(3):
        assert await call(services.expire, participant_id=p.pk) is False
    assert [pk for pk, _ in await call(timeout_events)] == [p.pk]


async def test_a_scheduler_ignores_the_same_deadline_given_twice(users: dict[str, Any]) -> None:
    scheduler = timers.Scheduler(rescan_seconds=60)
    scheduler.add(time.time() + 5, "invitation", 1)
    scheduler.add(time.time() + 5, "invitation", 1)  # a different float: a distinct entry
    at = time.time() + 5
    scheduler.add(at, "invitation", 2)
    scheduler.add(at, "invitation", 2)
    scheduler.add(at, "no-such-kind", 3)
    assert [e[2] for e in scheduler.heap].count(2) == 1
    assert all(e[1] == "invitation" for e in scheduler.heap)


async def test_a_stale_timer_never_expires_a_newer_invitation(
    users: dict[str, Any], start_worker: Any
) -> None:
    # given carol timed out of an ongoing call and bob invited her again for 60 s
    c = await invite(users["alice"], "bob", "carol", timeout=60)
    await call(services.accept, actor=users["bob"], call_id=c["id"])
    p = await call(Participant.objects.get, call_id=c["id"], user=users["carol"])
    old = timezone.now() - timedelta(seconds=1)
    await call(lambda: Participant.objects.filter(pk=p.pk).update(deadline=old))
    assert await call(services.expire, participant_id=p.pk)
    await call(services.add_invitees, actor=users["bob"], call_id=c["id"], invitees=["carol"])
    # when the old deadline's timer fires in a worker
    scheduler = await start_worker()
    scheduler.add(old.timestamp(), "invitation", p.pk)
    await asyncio.sleep(0.3)
    # then the new invitation still rings
    p = await call(Participant.objects.get, pk=p.pk)
    assert p.state == "inviting" and p.deadline > timezone.now() + timedelta(seconds=50)
    assert len(await call(timeout_events)) == 1
