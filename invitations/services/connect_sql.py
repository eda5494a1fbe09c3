"""A socket's registration as plain SQL: every connect runs it, all at once in a reconnect storm.

Building these six statements through the ORM cost 2.3 ms of CPU per connect on SQLite (issue 9:
compiling each query, its converters and model instances), a quarter of a socket's whole connect
under a connect storm (py-spy). They have a fixed shape, so their text is made once per process
(as ``selectors._availability_sql`` is), for SQLite and PostgreSQL alike; values are parameters.
tests/services/test_query_counts.py counts them and the device tests check what they do.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from ..models import LIVE_CALL_STATES, Call, DeviceConnection, Participant, UserPresence
from ..sql import marks, table, when


@dataclass(frozen=True)
class _Statements:
    count_fresh: str
    insert_device: str
    stop_inviter_countdowns: str
    stop_participant_countdowns: str
    presence: str
    insert_presence: str
    update_presence: str


@functools.cache
def _sql() -> _Statements:
    device, call, part, presence = (
        table(m) for m in (DeviceConnection, Call, Participant, UserPresence)
    )
    states = marks(LIVE_CALL_STATES)
    return _Statements(
        count_fresh=f"SELECT COUNT(*) FROM {device}"
        " WHERE user_id = %s AND last_seen >= %s AND channel_name <> %s",
        insert_device=f"INSERT INTO {device}"
        " (user_id, device_id, channel_name, server_id, connected_at, last_seen)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        stop_inviter_countdowns=f"UPDATE {call} SET inviter_offline_deadline = NULL"
        f" WHERE inviter_id = %s AND state IN ({states}) AND inviter_offline_deadline IS NOT NULL",
        stop_participant_countdowns=f"UPDATE {part} SET offline_deadline = NULL"
        " WHERE user_id = %s AND offline_deadline IS NOT NULL",
        presence=f"SELECT online, offline_deadline IS NOT NULL FROM {presence} WHERE user_id = %s",
        insert_presence=f"INSERT INTO {presence} (user_id, online, offline_deadline)"
        " VALUES (%s, %s, NULL)",
        update_presence=f"UPDATE {presence} SET online = %s, offline_deadline = NULL"
        " WHERE user_id = %s",
    )


def fresh_devices_besides(user_id: int, channel_name: str, since: datetime) -> int:
    """How many fresh connections the user holds, other than ``channel_name``."""
    with connection.cursor() as cursor:
        cursor.execute(_sql().count_fresh, [user_id, when(since), channel_name])
        return int(cursor.fetchone()[0])


def insert_device(
    *, user_id: int, device_id: str, channel_name: str, server_id: str, now: datetime
) -> None:
    """A new socket's row (its channel name is new: nothing to update)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _sql().insert_device,
            [user_id, device_id, channel_name, server_id, when(now), when(now)],
        )


def stop_offline_countdowns(user_id: int) -> None:
    """A device of the user is back: no call of theirs ends or leaves for their absence.
    (``updated_at`` stays: a countdown is not a change anyone was told of.)"""
    with connection.cursor() as cursor:
        cursor.execute(_sql().stop_inviter_countdowns, [user_id, *LIVE_CALL_STATES])
        cursor.execute(_sql().stop_participant_countdowns, [user_id])


def presence_of(user_id: int) -> tuple[bool, bool] | None:
    """The user's presence row: (online, a grace is counting), or None if they have none."""
    with connection.cursor() as cursor:
        cursor.execute(_sql().presence, [user_id])
        row = cursor.fetchone()
    return None if row is None else (bool(row[0]), bool(row[1]))


def set_online(user_id: int, *, insert: bool) -> None:
    """The user is online, with no grace counting (``insert``: they have no row yet)."""
    with connection.cursor() as cursor:
        if insert:
            cursor.execute(_sql().insert_presence, [user_id, True])
        else:
            cursor.execute(_sql().update_presence, [True, user_id])
