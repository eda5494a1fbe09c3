"""The last write of a transition: the call's row and the events that record it, in one statement.

A transition that changes its call (accept: ringing -> ongoing; every end) finishes with an
UPDATE of the call and an INSERT of its CallEvents. On PostgreSQL both go in one statement, a
data-modifying CTE, which saves a statement and a round trip per answer, cancel and end
(issue 9: accept, reject and cancel at 6 queries with the call's lock and the read after it).

Why one snapshot is safe here: the caller holds the call's row lock and read the participants
in a statement after taking it, so it decided on everything the previous holder committed.
The CTE's UPDATE still checks the row is in the state read under the lock (a writer that skipped
the lock would fail it, and the transition rolls back); its INSERT reads nothing.

SQLite has no data-modifying CTEs and needs none: it runs the two statements (its IMMEDIATE
transactions already spare it the lock statement).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model, QuerySet
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from ..models import Call, CallEvent, Participant
from ..sql import field, marks, table

# Six parameters per event; SQLite takes at most 32,766 in one statement.
EVENTS_PER_STATEMENT = 1000


class CallChangedWithoutLockError(RuntimeError):
    """The locked call's row was not in the state read under its lock: a writer skipped it."""


def update_call(call: Call, events: list[CallEvent], **changes: Any) -> None:
    """Update the locked ``call``'s row with ``changes`` and insert ``events`` (in order).

    Conditional on the row's state being ``call.state``, as read under the lock; a row in
    another state raises ``CallChangedWithoutLockError`` (the transaction rolls back: nothing
    that holds the lock can get there). The caller updates ``call`` in memory.
    """
    rows = Call.objects.filter(pk=call.pk, state=call.state)
    if connection.vendor == "postgresql" and 0 < len(events) <= EVENTS_PER_STATEMENT:
        updated = _update_and_insert(rows, changes, events)
    else:
        updated = rows.update(**changes)
        insert_events(events)
    if updated != 1:
        raise CallChangedWithoutLockError(f"Call {call.pk} left {call.state} under its lock.")


def move_participant(pk: int, allowed: Sequence[str], changes: dict[str, Any]) -> bool:
    """UPDATE one participant's row with ``changes`` if its state is one of ``allowed``; True
    if it moved (``rules.move``, the conditional update every transition wins or loses).

    Plain SQL: through ``QuerySet.update`` Django built and compiled the UPDATE on each call, a
    move's main cost. Values go through each field's ``get_db_prep_save``, as the ORM's would
    (a related object by its primary key)."""
    fields = [field(Participant, name) for name in changes]
    values = [
        f.get_db_prep_save(v.pk if isinstance(v, Model) else v, connection)
        for f, v in zip(fields, changes.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            _move_sql(tuple(f.column for f in fields), len(allowed)), [*values, pk, *allowed]
        )
        moved: int = cursor.rowcount
    return moved == 1


@functools.cache
def _move_sql(columns: tuple[str, ...], allowed: int) -> str:
    q = connection.ops.quote_name
    return (
        f"UPDATE {table(Participant)} SET {', '.join(f'{q(c)} = %s' for c in columns)}"
        f" WHERE {q('id')} = %s AND {q('state')} IN ({marks(allowed)})"
    )


def insert_events(events: Sequence[CallEvent]) -> None:
    """Insert CallEvents not saved yet, in their order: one statement per 1,000.

    Plain SQL rather than ``bulk_create``: the timer worker inserts thousands a second, and
    Django compiling each row's values cost a fifth of an expiry's CPU (issue 9, py-spy of
    scripts/expiry_rate.py). Each event gets its primary key and, unless it has one, the
    insert's time as ``created_at`` (what ``auto_now_add`` would give).
    """
    for start in range(0, len(events), EVENTS_PER_STATEMENT):
        chunk = events[start : start + EVENTS_PER_STATEMENT]
        with connection.cursor() as cursor:
            cursor.execute(_insert_sql(len(chunk)), _event_params(chunk))
            _took_ids(chunk, [pk for (pk,) in cursor.fetchall()])


# The columns an event's row fills, in ``_event_params``' order, each with its PostgreSQL type
# (the arrays below are cast to it).
_COLUMNS = {
    "call_id": "uuid",
    "kind": "text",
    "actor_id": "integer",
    "subject_id": "integer",
    "data": "jsonb",
    "created_at": "timestamptz",
}
# From this many events PostgreSQL takes the rows as one array per column: a statement of six
# parameters whatever the count, which psycopg parses once and PostgreSQL prepares once. Rows as
# VALUES made a statement per count, thousands of placeholders long for the timer worker's
# batches, that psycopg split in Python each time (13% of the worker's CPU). Fewer events, a
# transition's one to three, stay VALUES: psycopg dumps arrays in Python, and for 2 events that
# cost 0.41-0.44 ms of CPU per insert against 0.24-0.25 (500 events: 15 against 22-26 ms; the
# two meet at about 32; issue 9, bench/README.md "tenth round").
ARRAYS_FROM = 50


def _as_arrays(events: int, vendor: str) -> bool:
    return events >= ARRAYS_FROM and vendor == "postgresql"


@functools.cache
def _insert_sql(events: int) -> str:
    """``INSERT ... RETURNING id`` of ``events`` rows (parameters as ``_event_params`` gives)."""
    q = connection.ops.quote_name
    columns = ", ".join(q(c) for c in _COLUMNS)
    if _as_arrays(events, connection.vendor):
        arrays = ", ".join(f"%s::{t}[]" for t in _COLUMNS.values())
        rows = f"SELECT * FROM unnest({arrays})"
    else:
        rows = f"VALUES {', '.join([f'({marks(_COLUMNS)})'] * events)}"
    return f"INSERT INTO {table(CallEvent)} ({columns}) {rows} RETURNING {q('id')}"


def _event_params(events: Sequence[CallEvent]) -> list[Any]:
    """The rows' values: row after row, or one list per column (``_as_arrays``)."""
    db = connections[DEFAULT_DB_ALIAS]  # resolved once: ``connection`` looks it up per use
    ops, call_pk = db.ops, Call._meta.pk
    assert call_pk is not None
    now = timezone.now()
    # A batch's events share few calls and one time: each is converted once.
    calls: dict[Any, Any] = {}
    times: dict[datetime, Any] = {}
    rows: list[tuple[Any, ...]] = []
    for e in events:
        if e.created_at is None:
            e.created_at = now
        if e.call_id not in calls:
            calls[e.call_id] = call_pk.get_db_prep_value(e.call_id, db)
        if e.created_at not in times:
            times[e.created_at] = ops.adapt_datetimefield_value(e.created_at)
        rows.append(
            (
                calls[e.call_id],
                e.kind,
                e.actor_id,
                e.subject_id,
                ops.adapt_json_value(e.data, None),
                times[e.created_at],
            )
        )
    if _as_arrays(len(events), db.vendor):
        return [list(column) for column in zip(*rows, strict=True)]
    return [value for row in rows for value in row]


def _took_ids(events: Sequence[CallEvent], ids: list[int]) -> None:
    for event, pk in zip(events, ids, strict=True):
        event.pk = pk
        event._state.adding, event._state.db = False, connection.alias


def _update_and_insert(
    rows: QuerySet[Call], changes: dict[str, Any], events: list[CallEvent]
) -> int:
    """PostgreSQL: ``rows.update(**changes)`` and ``insert_events(events)`` as one statement.

    The UPDATE is compiled by Django's own compiler (the SQL ``update()`` would send), so its
    field conversions stay Django's. Returns the rows updated; the events get their ids.
    """
    update = cast(UpdateQuery, rows.query.chain(UpdateQuery))
    update.add_update_values(changes)
    update_sql, update_params = update.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        # Data-modifying CTEs run to completion whether or not the outer SELECT reads them;
        # it reads the inserted ids (in insert order, as insert_events relies on) and the count.
        cursor.execute(
            f"WITH changed AS ({update_sql} RETURNING 1),"
            f" recorded AS ({_insert_sql(len(events))})"
            " SELECT (SELECT count(*) FROM changed), recorded.id FROM recorded",
            (*update_params, *_event_params(events)),
        )
        rows_back = cursor.fetchall()
    _took_ids(events, [pk for _, pk in rows_back])
    return int(rows_back[0][0])
