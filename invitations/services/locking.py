"""Locks: the order every write takes them in, and the reads that must follow them.

A transition locks its call (``lock_call``), then users in a fixed order (``lock_users``); the
per-user lock is also the device lifecycle's, so "busy?" and "first/last device?" are each
decided once. SQLite needs no lock statements: its IMMEDIATE transactions hold the database's
one write lock from BEGIN (callsite/db/sqlite3).
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from django.contrib.auth.models import User
from django.db import connection

from .. import sql
from ..errors import CallError
from ..models import Call, Participant, UserLock


def lock_call(call_id: UUID, user: User) -> tuple[Call, Participant]:
    """Lock the call row and return it with the user's participation (404 if they have none)."""
    call, me, _ = lock_call_with_everyone(call_id, user, everyone=False)
    return call, me


def lock_call_with_everyone(
    call_id: UUID, user: User, *, everyone: bool = True
) -> tuple[Call, Participant, list[Participant]]:
    """``lock_call``, reading every participant (``read_participants``) rather than the user's
    alone when ``everyone``: one read for a transition that needs them all anyway. The read
    follows the lock, so it sees what the last holder of the lock committed."""
    if everyone and connection.vendor == "sqlite":
        call, participants = _read_call_with_everyone(call_id)
        me = next((p for p in participants if p.user_id == user.pk), None)
        if call is None or me is None:
            raise CallError("not_found", "No such call.")
        return call, me, participants
    call = Call.objects.select_for_update().select_related("inviter").filter(pk=call_id).first()
    me = None
    participants = []
    if call is not None:
        if everyone:
            participants = read_participants(call)
            me = next((p for p in participants if p.user_id == user.pk), None)
        else:
            me = Participant.objects.filter(call=call, user=user).first()
    if call is None or me is None:
        # Existence of calls you are not part of is not leaked.
        raise CallError("not_found", "No such call.")
    return call, me, participants


def _read_call_with_everyone(call_id: UUID) -> tuple[Call | None, list[Participant]]:
    """SQLite: the call and its participants in one read. No lock statement is needed there:
    the transaction's BEGIN IMMEDIATE already holds the database's one write lock, so nothing
    can change between this read and the commit. (PostgreSQL needs the row lock first, in a
    statement of its own: under READ COMMITTED each statement reads its own snapshot, and a
    read joined to the lock would miss what the previous holder of the lock committed.)"""
    participants = list(
        Participant.objects.filter(call_id=call_id).select_related(
            "call__inviter", "user", "invited_by"
        )
    )
    if not participants:
        return None, []
    call = participants[0].call
    for p in participants:
        p.call = call  # one Call instance, as the locked path gives
    return call, participants


def lock_users(user_ids: Iterable[int]) -> None:
    """Take the per-user lock rows in a fixed order, so that concurrent writers never deadlock.

    The one per-user lock: invites take it for the inviter and the invitees, the device
    lifecycle for a user whose devices come and go, so "busy?" and "first/last device?" are
    each decided once.
    """
    ids = sorted(set(user_ids))
    if not ids or connection.vendor == "sqlite":
        # SQLite has no row locks, and needs none: every write transaction here is IMMEDIATE
        # (callsite/db/sqlite3), which takes the database's one write lock at BEGIN and so
        # serialises writers already. The lock rows would cost an insert per write.
        return
    if connection.vendor == "postgresql":
        # One statement: a row that exists is locked FOR UPDATE by ON CONFLICT DO UPDATE even
        # though ``WHERE false`` leaves it unwritten (PostgreSQL's INSERT docs); rows are taken
        # in VALUES order, sorted, like the SELECT ... FOR UPDATE it replaces.
        table = sql.table(UserLock)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (user_id) VALUES {', '.join(['(%s)'] * len(ids))} "
                "ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id WHERE false",
                ids,
            )
        return
    UserLock.objects.bulk_create([UserLock(user_id=i) for i in ids], ignore_conflicts=True)
    if connection.features.has_select_for_update:
        list(UserLock.objects.select_for_update().filter(user_id__in=ids).order_by("user_id"))


def read_participants(call: Call) -> list[Participant]:
    """Every participant of a locked call, in the call's order, ready for a snapshot."""
    return list(Participant.objects.filter(call=call).select_related("user", "invited_by"))
