"""The last write of a transition: the call's change and its events, together (statements.py).

On PostgreSQL they are one statement; on SQLite two. Either way the events go in, in order,
only with the change, and a call row that is not as it was read under its lock undoes the
whole transition.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from invitations import services
from invitations.models import Call, CallEvent, CallState
from invitations.services.rules import event
from invitations.services.statements import (
    EVENTS_PER_STATEMENT,
    CallChangedWithoutLockError,
    insert_events,
    update_call,
)

pytestmark = pytest.mark.django_db(transaction=True)


def ring(users: dict[str, Any], *invitees: str) -> str:
    return str(services.invite(inviter=users["alice"], invitees=list(invitees)).call["id"])


def test_the_change_and_its_events_are_written_together_in_order(users: dict[str, Any]) -> None:
    call_id = ring(users, "bob")
    call = Call.objects.get(pk=call_id)
    first = event(call, CallEvent.Kind.ACCEPTED, actor=users["bob"], subject=users["bob"])
    second = event(call, CallEvent.Kind.QUIT, actor=users["bob"], subject=users["bob"])
    with transaction.atomic():
        update_call(call, [first, second], state=CallState.ONGOING)
    assert Call.objects.get(pk=call_id).state == CallState.ONGOING
    assert first.pk is not None and second.pk is not None and first.pk < second.pk
    kinds = list(CallEvent.objects.filter(call_id=call_id).values_list("kind", flat=True))
    assert kinds[-2:] == ["accepted", "quit"]


def test_a_call_changed_without_its_lock_undoes_the_transition(users: dict[str, Any]) -> None:
    call_id = ring(users, "bob")
    call = Call.objects.get(pk=call_id)  # read as "ringing"
    Call.objects.filter(pk=call_id).update(state=CallState.ONGOING)  # a writer without the lock
    before = CallEvent.objects.filter(call_id=call_id).count()
    with pytest.raises(CallChangedWithoutLockError), transaction.atomic():
        update_call(
            call,
            [event(call, CallEvent.Kind.ENDED, reason="ended")],
            state=CallState.ENDED,
            end_reason="ended",
        )
    assert Call.objects.get(pk=call_id).state == CallState.ONGOING
    assert CallEvent.objects.filter(call_id=call_id).count() == before


def test_an_end_cancels_the_ringing_and_records_it_before_the_end(users: dict[str, Any]) -> None:
    call_id = ring(users, "bob", "carol")
    services.accept(actor=users["bob"], call_id=call_id)
    after = services.end(actor=users["alice"], call_id=call_id)
    assert after["state"] == "ended"
    assert {p["user"]: p["state"] for p in after["participants"]}["carol"] == "cancelled"
    kinds = list(CallEvent.objects.filter(call_id=call_id).values_list("kind", flat=True))
    assert kinds[-2:] == ["cancelled", "ended"]


def test_events_go_in_as_made_in_order_with_their_ids_however_many(users: dict[str, Any]) -> None:
    """``insert_events`` is plain SQL in statements of 1,000: each row keeps its call, kind,
    actor, subject, data and time, in order across statements, and gets its id."""
    call_id = ring(users, "bob")
    call = Call.objects.get(pk=call_id)
    before = CallEvent.objects.filter(call_id=call_id).count()
    made = [
        event(call, CallEvent.Kind.RECEIVED, actor=users["bob"], subject=users["carol"], n=i)
        for i in range(EVENTS_PER_STATEMENT + 2)
    ]
    made[-1] = event(call, CallEvent.Kind.TIMEOUT, note='quote " and ünïcode')
    with transaction.atomic():
        insert_events(made)
    assert all(e.pk is not None for e in made)
    assert [e.pk for e in made] == sorted(e.pk for e in made)
    rows = list(CallEvent.objects.filter(call_id=call_id).order_by("created_at", "id")[before:])
    assert [r.pk for r in rows] == [e.pk for e in made]
    assert [r.data.get("n") for r in rows[:-1]] == list(range(EVENTS_PER_STATEMENT + 1))
    first, last = rows[0], rows[-1]
    assert (first.kind, first.actor_id, first.subject_id) == (
        "received",
        users["bob"].pk,
        users["carol"].pk,
    )
    assert (last.kind, last.actor_id, last.subject_id) == ("timeout", None, None)
    assert last.data == {"note": 'quote " and ünïcode'}
    assert first.created_at is not None and first.created_at == made[0].created_at
