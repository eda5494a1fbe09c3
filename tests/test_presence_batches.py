"""Batched presence graces: ``services.expire_presence_many`` keeps every promise of one grace.

After a disconnect wave (a deploy, a network blip) thousands of graces end together; the timer
worker settles them many to a transaction. Whatever the batching:

- each user whose grace is over and who has no fresh device goes offline once, and subscribers
  hear one ``presence.changed`` for them, after the commit;
- a user whose device came back (deadline cleared), whose grace is not over, or who is offline
  already is left alone; one with a fresh device keeps online and loses the stray countdown;
- a batch costs the same statements for one user as for many;
- the worker fires a burst of graces in several batches and counts each win once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from invitations import services, timers
from invitations.models import DeviceConnection, UserPresence
from invitations.presence import PRESENCE_GROUP
from tests.callflow import channel_messages, run_scheduler_until

pytestmark = pytest.mark.django_db(transaction=True)


def graces_over(prefix: str, n: int) -> list[Any]:
    """``n`` users online whose last device left and whose grace is over."""
    model = get_user_model()
    people = [model.objects.create_user(f"{prefix}{i}", password="x") for i in range(n)]
    past = timezone.now() - timedelta(seconds=1)
    for user in people:
        UserPresence.objects.create(user=user, online=True, offline_deadline=past)
    return people


class Listener:
    """A channel in the presence group, as each server process' hub has one."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(PRESENCE_GROUP, self.channel)

    def heard(self) -> list[tuple[str, bool]]:
        return [(m["user"], m["online"]) for m in channel_messages(self.layer, self.channel, 0.2)]


def state(user: Any) -> tuple[bool, bool]:
    """(online, a countdown is set) as the row says."""
    row = UserPresence.objects.get(user=user)
    return row.online, row.offline_deadline is not None


def test_a_batch_turns_offline_whose_grace_is_over_and_tells_each_once() -> None:
    # given six users whose graces are over, heard by one process
    people = graces_over("g", 6)
    listener = Listener()
    # when one batch settles them, and a second batch the same ones again
    gone = services.expire_presence_many(user_ids=[u.pk for u in people])
    again = services.expire_presence_many(user_ids=[u.pk for u in people])
    # then each went offline once, and was heard once, in the order of the batch
    assert gone == sorted(u.pk for u in people) and again == []
    assert all(state(u) == (False, False) for u in people)
    assert listener.heard() == [(u.username, False) for u in people]


def test_a_batch_leaves_alone_who_came_back_is_not_due_or_is_connected() -> None:
    back, waiting, offline, connected, over = graces_over("m", 5)
    UserPresence.objects.filter(user=back).update(offline_deadline=None)  # a reload
    UserPresence.objects.filter(user=waiting).update(
        offline_deadline=timezone.now() + timedelta(seconds=30)
    )
    UserPresence.objects.filter(user=offline).update(online=False)
    DeviceConnection.objects.create(
        user=connected,
        device_id="phone",
        channel_name="c1",
        server_id="s",
        last_seen=timezone.now(),
    )
    listener = Listener()
    everyone = [back, waiting, offline, connected, over]
    assert services.expire_presence_many(user_ids=[u.pk for u in everyone]) == [over.pk]
    assert [state(u) for u in everyone] == [
        (True, False),  # back: online, nothing counting
        (True, True),  # waiting: its grace goes on
        (False, True),  # offline already: untouched
        (True, False),  # connected: online, the stray countdown voided
        (False, False),  # over: offline
    ]
    assert listener.heard() == [(over.username, False)]


def test_nothing_is_heard_before_the_commit() -> None:
    (user,) = graces_over("t", 1)
    listener = Listener()
    with transaction.atomic():
        services.expire_presence_many(user_ids=[user.pk])
        assert listener.heard() == []
    assert listener.heard() == [(user.username, False)]


def test_a_batch_costs_the_same_statements_for_one_user_as_for_many(
    django_assert_max_num_queries: Any,
) -> None:
    one, *many = graces_over("q", 41)
    with CaptureQueriesContext(connection) as single:
        services.expire_presence_many(user_ids=[one.pk])
    with django_assert_max_num_queries(len(single)):
        assert len(services.expire_presence_many(user_ids=[u.pk for u in many])) == 40


async def test_the_worker_settles_a_burst_of_graces_in_batches_and_counts_each_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given 15 graces over at once, batches of 4
    monkeypatch.setattr(timers, "BATCH", 4)
    sizes: list[int] = []
    batch = timers._BATCHED["presence_offline"]

    def spied(ids: list[int]) -> list[int]:
        sizes.append(len(ids))
        return batch(ids)

    monkeypatch.setitem(timers._BATCHED, "presence_offline", spied)
    people = await database_sync_to_async(graces_over)("w", 15)
    listener = await database_sync_to_async(Listener)()
    scheduler = timers.Scheduler(rescan_seconds=60)
    await run_scheduler_until(scheduler, len(people))
    # then four batches, each user offline and heard once
    assert sorted(sizes) == [3, 4, 4, 4]
    assert scheduler.fired == 15
    heard = await database_sync_to_async(listener.heard)()
    assert sorted(heard) == sorted((u.username, False) for u in people)
