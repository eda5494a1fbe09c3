"""The hot paths' plain SQL reads and writes what the ORM would.

- The locked read of a call with everyone in it (``services/locking.py``): every answer, cancel
  and end reads the call, its inviter and each participant with its user and ``invited_by``
  under the call's lock.
- The invitees by name (``selectors.active_users_named``): every invitation resolves them first.
- An invitation's call and participants, inserted by ``sql.insert``.

The instances must be what the ORM gives: every field equal in value and type (SQLite keeps
UUIDs as hex and times as text), in the call's order, the relations there without another query,
and saving them changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from invitations import selectors, services
from invitations.errors import CallError
from invitations.models import Call, Participant
from invitations.services.locking import lock_call_with_everyone, read_participants
from tests.callflow import channel_messages

pytestmark = pytest.mark.django_db(transaction=True)


def same(got: Model, want: Model, *, but: tuple[str, ...] = ()) -> None:
    assert type(got) is type(want)
    for field in type(want)._meta.concrete_fields:
        if field.name in but:
            continue
        g, w = getattr(got, field.attname), getattr(want, field.attname)
        assert (g, type(g)) == (w, type(w)), f"{type(want).__name__}.{field.name}"
    assert not got._state.adding and got._state.db == want._state.db


def group_call(users: dict[str, Any]) -> str:
    """alice rings bob and carol; bob accepts and adds dave (invited by bob); carol rejects."""
    call_id = services.invite(
        inviter=users["alice"], invitees=["bob", "carol"], extended_data="x" * 20
    ).call["id"]
    services.accept(actor=users["bob"], call_id=call_id)
    services.add_invitees(actor=users["bob"], call_id=call_id, invitees=["dave"])
    services.reject(actor=users["carol"], call_id=call_id, reason="busy")
    return str(call_id)


def orm_read(call_id: str) -> list[Participant]:
    return list(
        Participant.objects.filter(call_id=call_id).select_related(
            "call__inviter", "user", "invited_by"
        )
    )


def test_the_locked_read_is_what_the_orm_reads(users: dict[str, Any]) -> None:
    call_id = group_call(users)
    expected = orm_read(call_id)
    with transaction.atomic():
        call, me, everyone = lock_call_with_everyone(call_id, users["carol"])
        with CaptureQueriesContext(connection) as later:
            # the relations are there, with no query of their own
            related = [(p.call, p.call.inviter, p.user, p.invited_by) for p in everyone]
    assert len(later) == 0
    assert [p.pk for p in everyone] == [p.pk for p in expected] and len(everyone) == 4
    assert me.user_id == users["carol"].pk
    for p, want, (p_call, inviter, user, invited_by) in zip(
        everyone, expected, related, strict=True
    ):
        same(p, want)
        assert p_call is call
        same(call, want.call)
        same(inviter, want.call.inviter)
        same(user, want.user)
        if want.invited_by is None:
            assert invited_by is None
        else:
            same(invited_by, want.invited_by)
    assert [p.invited_by.username if p.invited_by else None for p in everyone] == [
        None,
        "alice",
        "alice",
        "bob",
    ]
    # full instances: saving them changes nothing (but the time of the change)
    everyone[1].save()
    call.save()
    same(Participant.objects.get(pk=everyone[1].pk), expected[1], but=("updated_at",))
    same(Call.objects.get(pk=call.pk), expected[0].call)


def test_read_participants_gives_the_same_rows_for_a_call_in_hand(users: dict[str, Any]) -> None:
    call_id = group_call(users)
    call = Call.objects.get(pk=call_id)
    got = read_participants(call)
    for p, want in zip(got, orm_read(call_id), strict=True):
        same(p, want)
        assert p.call is call


def test_who_is_not_in_the_call_or_a_call_that_is_not_there_is_not_found(
    users: dict[str, Any],
) -> None:
    call_id = group_call(users)
    for call, user in ((call_id, "erin"), ("00000000-0000-0000-0000-000000000000", "alice")):
        with transaction.atomic(), pytest.raises(CallError) as refused:
            lock_call_with_everyone(call, users[user])
        assert refused.value.code == "not_found"


def test_the_invitees_by_name_are_the_active_users_as_the_orm_reads_them(
    users: dict[str, Any],
) -> None:
    users["dave"].is_active = False
    users["dave"].last_login = users["dave"].date_joined
    users["dave"].save()
    users["bob"].first_name = "Bób"
    users["bob"].save()
    got = selectors.active_users_named(["bob", "dave", "nobody", "carol", "bob"])
    assert sorted(u.username for u in got) == ["bob", "carol"]  # not dave: inactive
    for user in got:
        same(user, type(user).objects.get(pk=user.pk))
    assert selectors.active_users_named([]) == []


def test_an_invitations_rows_are_inserted_as_the_orm_saves_them(users: dict[str, Any]) -> None:
    # given an invitation of two, one of them busy in a call of their own
    services.invite(inviter=users["erin"], invitees=["dave"])
    before = timezone.now()
    call_id = services.invite(
        inviter=users["alice"], invitees=["bob", "dave"], timeout=42, extended_data="hi"
    ).call["id"]
    # the call and its three participants read back as instances of what was written
    call = Call.objects.get(pk=call_id)
    assert (call.inviter_id, call.timeout, call.extended_data, call.state) == (
        users["alice"].pk,
        42,
        "hi",
        "ringing",
    )
    assert call.created_at >= before
    rows = orm_read(str(call_id))
    assert [(p.user.username, p.role, p.state) for p in rows] == [
        ("alice", "inviter", "accepted"),
        ("bob", "invitee", "inviting"),
        ("dave", "invitee", "rejected"),
    ]
    assert all(p.joined_at >= before and p.updated_at >= before for p in rows)
    assert rows[1].deadline is not None and rows[2].reason == "busy"
    assert [p.invited_by_id for p in rows] == [None, users["alice"].pk, users["alice"].pk]
    # and the ids the insert gave the instances are the rows': bob's timer names his row
    assert [t for t in timers_sent() if t[0] == "invitation"][-1] == ("invitation", rows[1].pk)


def timers_sent() -> list[tuple[str, Any]]:
    """The timers handed to the worker's channel so far (no worker runs in these tests)."""
    layer = get_channel_layer(settings.WORKER_CHANNEL_LAYER)
    return [(m["kind"], m["id"]) for m in channel_messages(layer, settings.TIMER_CHANNEL)]
