"""Batched timeouts: ``services.expire_many`` keeps every promise of ``expire``.

The timer worker expires due invitations many to a transaction. Whatever the batching:

- each due invitee times out exactly once, with one ``timeout`` row, even when batches overlap
  and race each other and single ``expire`` calls;
- invitees not yet due, or no longer ringing, are left alone;
- each call then ends by API.md's rules (``unanswered`` when nobody is left ringing before anyone
  accepted; an ongoing call goes on), and the events go out after the commit;
- the worker fires a burst of deadlines in several batches and counts each win once.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.utils import timezone

from invitations import services, timers
from invitations.models import Call, CallEvent, Participant
from tests.callflow import Inbox, run_scheduler_until, together

pytestmark = pytest.mark.django_db(transaction=True)


def people(prefix: str, n: int) -> list[Any]:
    model = get_user_model()
    return [model.objects.create_user(f"{prefix}{i}", password="x") for i in range(n)]


def ring(inviter: Any, *invitees: Any) -> str:
    names = [u.username for u in invitees]
    return str(services.invite(inviter=inviter, invitees=names, timeout=60).call["id"])


def make_due(call_id: str, *users: Any) -> list[int]:
    """Move these invitees' deadlines into the past; their participant ids."""
    qs = Participant.objects.filter(call_id=call_id, user__in=users)
    qs.update(deadline=timezone.now() - timedelta(seconds=1))
    return list(qs.values_list("pk", flat=True))


def timeouts_per_participant() -> Counter[int]:
    ids = {(p.call_id, p.user_id): p.pk for p in Participant.objects.all()}
    return Counter(
        ids[(c, u)]
        for c, u in CallEvent.objects.filter(kind="timeout").values_list("call_id", "subject_id")
    )


def test_many_due_invitees_in_racing_batches_expire_exactly_once(users: dict[str, Any]) -> None:
    # given 12 one-to-one calls, every invitee due
    folks = people("p", 24)
    one_to_one = [ring(folks[i], folks[i + 1]) for i in range(0, 24, 2)]
    due = [pk for k, c in enumerate(one_to_one) for pk in make_due(c, folks[2 * k + 1])]
    # a ringing group call whose three invitees are all due
    a, b, c, d = (users[n] for n in ("alice", "bob", "carol", "dave"))
    group = ring(a, b, c, d)
    due += make_due(group, b, c, d)
    # an ongoing call: erin accepted, frank is due, grace still has time
    e, f, g, h = (users[n] for n in ("erin", "frank", "grace", "heidi"))
    ongoing = ring(h, e, f, g)
    services.accept(actor=e, call_id=ongoing)
    due += make_due(ongoing, f)
    not_due = list(Participant.objects.filter(call_id=ongoing, user=g).values_list("pk", flat=True))

    # when overlapping batches race each other and single expires, grace's id included
    everything = due + not_due
    thirds = [everything[i::3] for i in range(3)]
    results = together(
        lambda: services.expire_many(participant_ids=everything),
        lambda: services.expire_many(participant_ids=list(reversed(everything))),
        *(lambda part=part: services.expire_many(participant_ids=part) for part in thirds),
        *(lambda pk=pk: services.expire(participant_id=pk) for pk in due[:5]),
    )

    # then every due invitee timed out exactly once, and the winners add up to them
    for res in results:
        assert not isinstance(res, BaseException), repr(res)
    won = [pk for res in results[:5] for pk in res] + [
        pk for pk, res in zip(due[:5], results[5:], strict=True) if res is True
    ]
    assert sorted(won) == sorted(due)
    assert timeouts_per_participant() == Counter(due)
    assert set(Participant.objects.filter(pk__in=due).values_list("state", flat=True)) == {
        "timeout"
    }
    # grace still rings in the ongoing call, which goes on
    assert Participant.objects.get(pk=not_due[0]).state == "inviting"
    assert Call.objects.get(pk=ongoing).state == "ongoing"
    # the calls nobody answered ended unanswered, each exactly once
    for call_id in [*one_to_one, group]:
        call = Call.objects.get(pk=call_id)
        assert (call.state, call.end_reason) == ("ended", "unanswered")
        assert CallEvent.objects.filter(call_id=call_id, kind="ended").count() == 1


def test_a_batch_leaves_alone_who_answered_or_is_not_due(users: dict[str, Any]) -> None:
    # given bob rejected, carol is due, dave has time left
    a, b, c, d = (users[n] for n in ("alice", "bob", "carol", "dave"))
    call_id = ring(a, b, c, d)
    services.reject(actor=b, call_id=call_id)
    ids = make_due(call_id, b, c)
    dave = Participant.objects.get(call_id=call_id, user=d).pk

    # when a batch names all three
    expired = services.expire_many(participant_ids=[*ids, dave])

    # then only carol timed out and the call still rings for dave
    carol = Participant.objects.get(call_id=call_id, user=c).pk
    assert expired == [carol]
    assert timeouts_per_participant() == Counter([carol])
    assert Participant.objects.get(call_id=call_id, user=b).state == "rejected"
    assert Call.objects.get(pk=call_id).state == "ringing"
    # and the last one out ends it unanswered (a rejection and timeouts, not all cancelled)
    make_due(call_id, d)
    assert services.expire_many(participant_ids=[dave]) == [dave]
    call = Call.objects.get(pk=call_id)
    assert (call.state, call.end_reason) == ("ended", "unanswered")
    assert services.expire_many(participant_ids=[carol, dave]) == []


def test_a_batch_tells_each_invitee_and_everyone_after_commit(users: dict[str, Any]) -> None:
    inbox = Inbox(users)
    a, b, c = (users[n] for n in ("alice", "bob", "carol"))
    first, second = ring(a, b), ring(c, users["dave"])
    ids = make_due(first, b) + make_due(second, users["dave"])
    for name in ("alice", "bob", "carol", "dave"):
        inbox.forget(name)

    services.expire_many(participant_ids=ids)

    for invitee in ("bob", "dave"):
        got = [(e["type"], e.get("user"), e.get("state")) for e in inbox.take(invitee)]
        assert got == [
            ("call.invitation_timeout", None, None),
            ("call.user_state_changed", invitee, "timeout"),
            ("call.ended", None, None),
        ]
    ended = inbox.take("alice")[-1]
    assert (ended["type"], ended["reason"], ended["call_id"]) == ("call.ended", "unanswered", first)


async def test_the_worker_fires_a_burst_in_several_batches_and_counts_each_once(
    users: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 15 calls due at the same instant and batches of 4
    monkeypatch.setattr(timers, "BATCH", 4)

    def given() -> list[int]:
        folks = people("w", 30)
        ids: list[int] = []
        for i in range(0, 30, 2):
            ids += make_due(ring(folks[i], folks[i + 1]), folks[i + 1])
        return ids

    ids = await database_sync_to_async(given)()
    scheduler = timers.Scheduler(rescan_seconds=60)
    lateness: list[float] = []
    scheduler.on_fired = lateness.append
    await run_scheduler_until(scheduler, len(ids))
    # then every invitee expired once and the scheduler counted each win once
    assert scheduler.fired == len(ids) == 15
    assert await database_sync_to_async(timeouts_per_participant)() == Counter(ids)
    assert len(lateness) == 15
