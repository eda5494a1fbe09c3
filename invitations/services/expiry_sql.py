"""The timer worker's batch writes as plain SQL: thousands of rows a second move through them.

Each is one conditional UPDATE over a batch's ids (``deadlines._write_all`` checks that it moved
every row it names). Through the ORM, each ``pk__in`` of hundreds of ids cost Django a
conversion per id: a tenth of a batch's CPU once its events went in as plain SQL (issue 9,
py-spy of scripts/expiry_rate.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection

from ..models import (
    LIVE_CALL_STATES,
    RINGING_STATES,
    Call,
    CallState,
    Participant,
    ParticipantState,
)
from ..sql import marks, table, when


def time_out(participant_ids: Sequence[int], now: datetime) -> int:
    """Ringing invitees whose deadline passed by ``now`` time out; returns the rows moved."""
    return _move_ringing(participant_ids, ParticipantState.TIMEOUT, now, " AND deadline <= %s")


def cancel(participant_ids: Sequence[int], now: datetime) -> int:
    """Ringing participants of a call that ended are cancelled; returns the rows moved."""
    return _move_ringing(participant_ids, ParticipantState.CANCELLED, now, "")


def end_calls(call_ids: Sequence[UUID], reason: str, now: datetime) -> int:
    """Live calls end with ``reason``, their offline countdown too; returns the rows moved."""
    pk = Call._meta.pk
    assert pk is not None
    return _execute(
        f"UPDATE {table(Call)} SET state = %s, end_reason = %s, ended_at = %s,"
        f" inviter_offline_deadline = NULL WHERE id IN ({marks(call_ids)})"
        f" AND state IN ({marks(LIVE_CALL_STATES)})",
        [
            CallState.ENDED,
            reason,
            when(now),
            *(pk.get_db_prep_value(c, connection) for c in call_ids),
            *LIVE_CALL_STATES,
        ],
    )


def _move_ringing(ids: Sequence[int], state: str, now: datetime, condition: str) -> int:
    params: list[Any] = [state, when(now), *ids, *RINGING_STATES]
    if condition:
        params.append(when(now))
    return _execute(
        f"UPDATE {table(Participant)} SET state = %s, deadline = NULL, updated_at = %s"
        f" WHERE id IN ({marks(ids)}) AND state IN ({marks(RINGING_STATES)}){condition}",
        params,
    )


def _execute(sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)
