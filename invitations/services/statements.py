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

from typing import Any, cast

from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.sql import InsertQuery, UpdateQuery

from ..models import Call, CallEvent


class CallChangedWithoutLockError(RuntimeError):
    """The locked call's row was not in the state read under its lock: a writer skipped it."""


def update_call(call: Call, events: list[CallEvent], **changes: Any) -> None:
    """Update the locked ``call``'s row with ``changes`` and insert ``events`` (in order).

    Conditional on the row's state being ``call.state``, as read under the lock; a row in
    another state raises ``CallChangedWithoutLockError`` (the transaction rolls back: nothing
    that holds the lock can get there). The caller updates ``call`` in memory.
    """
    rows = Call.objects.filter(pk=call.pk, state=call.state)
    if connection.vendor == "postgresql" and events:
        updated = _update_and_insert(rows, changes, events)
    else:
        updated = rows.update(**changes)
        if events:
            CallEvent.objects.bulk_create(events)
    if updated != 1:
        raise CallChangedWithoutLockError(f"Call {call.pk} left {call.state} under its lock.")


def _update_and_insert(
    rows: QuerySet[Call], changes: dict[str, Any], events: list[CallEvent]
) -> int:
    """PostgreSQL: ``rows.update(**changes)`` and ``bulk_create(events)`` as one statement.

    Both are compiled by Django's own compilers (the SQL ``update()`` and ``bulk_create()``
    would send), so field conversions (JSON, UUID, ``auto_now_add``) stay Django's. Returns the
    rows updated; the events get their primary keys, as ``bulk_create`` gives them.
    """
    update = cast(UpdateQuery, rows.query.chain(UpdateQuery))
    update.add_update_values(changes)
    update_sql, update_params = update.get_compiler(connection=connection).as_sql()

    opts = CallEvent._meta
    insert = InsertQuery(CallEvent)
    insert.insert_values(
        [f for f in opts.concrete_fields if not f.primary_key], list[Model](events)
    )
    compiler = insert.get_compiler(connection=connection)
    compiler.returning_fields = [opts.pk]  # one INSERT ... RETURNING id, however many events
    [(insert_sql, insert_params)] = compiler.as_sql()

    with connection.cursor() as cursor:
        # Data-modifying CTEs run to completion whether or not the outer SELECT reads them;
        # it reads the inserted ids (in insert order, as bulk_create relies on) and the count.
        cursor.execute(
            f"WITH changed AS ({update_sql} RETURNING 1), recorded AS ({insert_sql}) "
            "SELECT (SELECT count(*) FROM changed), recorded.* FROM recorded",
            (*update_params, *insert_params),
        )
        rows_back = cursor.fetchall()
    for event, (_, pk) in zip(events, rows_back, strict=True):
        event.pk = pk
        event._state.adding, event._state.db = False, connection.alias
    return int(rows_back[0][0])
