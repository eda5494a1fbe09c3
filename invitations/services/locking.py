"""Locks: the order every write takes them in, and the reads that must follow them.

A transition locks its call (``lock_call``), then users in a fixed order (``lock_users``); the
per-user lock is also the device lifecycle's, so "busy?" and "first/last device?" are each
decided once. SQLite needs no lock statements: its IMMEDIATE transactions hold the database's
one write lock from BEGIN (callsite/db/sqlite3).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import ForeignKey, Model

from .. import sql
from ..errors import CallError
from ..models import Call, Participant, UserLock


def lock_call(call_id: UUID, user: User) -> tuple[Call, Participant]:
    """Lock the call row and return it with the user's participation (404 if they have none)."""
    call, me, _ = lock_call_with_everyone(call_id, user)
    return call, me


def lock_call_with_everyone(
    call_id: UUID, user: User
) -> tuple[Call, Participant, list[Participant]]:
    """``lock_call``, with every participant (``read_participants``): one read, which follows
    the lock, so it sees what the last holder of the lock committed."""
    if connection.vendor != "sqlite":
        # PostgreSQL needs the row lock first, in a statement of its own: under READ
        # COMMITTED each statement reads its own snapshot, and a read joined to the lock
        # would miss what the previous holder of the lock committed. SQLite needs no lock
        # statement: its transaction's BEGIN IMMEDIATE holds the database's one write lock.
        _lock_call_row(call_id)
    call, participants = _read_everyone(call_id)
    me = next((p for p in participants if p.user_id == user.pk), None)
    if call is None or me is None:
        # Existence of calls you are not part of is not leaked.
        raise CallError("not_found", "No such call.")
    return call, me, participants


def read_participants(call: Call) -> list[Participant]:
    """Every participant of a locked call, in the call's order, ready for a snapshot."""
    return _read_everyone(call.pk, call)[1]


def _lock_call_row(call_id: UUID) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {sql.table(Call)} WHERE {_quote('id')} = %s FOR UPDATE",
            [_CALL_PK.get_db_prep_value(call_id, connection)],
        )


def _read_everyone(
    call_id: UUID, call: Call | None = None
) -> tuple[Call | None, list[Participant]]:
    """The call with its inviter (unless given) and every participant with its user and
    invited_by, in the call's order, in one plain statement.

    Every answer, cancel and end of a call reads this under the call's lock; through the ORM
    (a four-table ``select_related`` compiled per call, five model instances per row) it was
    17.5% of an invite + cancel's CPU (py-spy of ``scripts/request_cpu.py``, issue 9). The
    instances are the ORM's (``sql.Columns.instance``). Whoever invited someone is a
    participant of the call too, so ``invited_by`` is one of the participants' users, as in
    ``expire_many``.
    """
    statement, calls, users, members = _everyone_sql()
    with connection.cursor() as cursor:
        cursor.execute(statement, [_CALL_PK.get_db_prep_value(call_id, connection)])
        rows = cursor.fetchall()
    if not rows:
        return call, []
    # Each row: the call's columns, its inviter's, the participant's, the participant's user's.
    at_inviter, at_participant = calls.count, calls.count + users.count
    at_user = at_participant + members.count
    if call is None:
        call = calls.instance(rows[0][:at_inviter])
        _INVITER.set_cached_value(call, users.instance(rows[0][at_inviter:at_participant]))
    participants = []
    by_user: dict[int, User] = {}
    for row in rows:
        p = members.instance(row[at_participant:at_user])
        p_user = by_user[p.user_id] = users.instance(row[at_user:])
        _CALL.set_cached_value(p, call)
        _USER.set_cached_value(p, p_user)
        participants.append(p)
    for p in participants:
        if p.invited_by_id is None or p.invited_by_id in by_user:
            _INVITED_BY.set_cached_value(p, by_user.get(p.invited_by_id))
    return call, participants


# The relations the read fills in, as the ORM's select_related would (their caches).
def _relation(model: type[Model], name: str) -> ForeignKey:
    found = sql.field(model, name)
    assert isinstance(found, ForeignKey)
    return found


_INVITER = _relation(Call, "inviter")
_CALL = _relation(Participant, "call")
_USER = _relation(Participant, "user")
_INVITED_BY = _relation(Participant, "invited_by")
_CALL_PK = sql.field(Call, "id")


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


@functools.cache
def _everyone_sql() -> tuple[str, sql.Columns, sql.Columns, sql.Columns]:
    user_model = get_user_model()
    calls, participants = sql.columns(Call, "c"), sql.columns(Participant, "p")
    users = sql.columns(user_model, "u")  # also makes the inviter's instance: the same model
    q = _quote
    statement = (
        f"SELECT {calls.sql}, {sql.columns(user_model, 'i').sql}, {participants.sql}, {users.sql}"
        f" FROM {sql.table(Participant)} p"
        f" INNER JOIN {sql.table(Call)} c ON c.{q('id')} = p.{q('call_id')}"
        f" INNER JOIN {sql.table(user_model)} i ON i.{q('id')} = c.{q('inviter_id')}"
        f" INNER JOIN {sql.table(user_model)} u ON u.{q('id')} = p.{q('user_id')}"
        f" WHERE p.{q('call_id')} = %s ORDER BY p.{q('joined_at')}, p.{q('id')}"
    )
    return statement, calls, users, participants


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
