"""A socket's registration as plain SQL: every connect runs it, all at once in a reconnect storm.

Building these six statements through the ORM cost 2.3 ms of CPU per connect on SQLite (issue 9:
compiling each query, its converters and model instances), a quarter of a socket's whole connect
under a connect storm (py-spy). They have a fixed shape, so they are written once here, for
SQLite and PostgreSQL alike; tests/services/test_query_counts.py counts them and the device
tests check what they do. Column and table names come from the models, values are parameters.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import Field, Model

from ..models import LIVE_CALL_STATES, Call, DeviceConnection, Participant, UserPresence


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)  # a concrete column, not a reverse relation
    return connection.ops.quote_name(field.column)


def _when(value: datetime) -> str | datetime | None:
    return connection.ops.adapt_datetimefield_value(value)


def fresh_devices_besides(user_id: int, channel_name: str, since: datetime) -> int:
    """How many fresh connections the user holds, other than ``channel_name``."""
    d = DeviceConnection
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {_table(d)} WHERE {_column(d, 'user')} = %s"
            f" AND {_column(d, 'last_seen')} >= %s AND {_column(d, 'channel_name')} <> %s",
            [user_id, _when(since), channel_name],
        )
        return int(cursor.fetchone()[0])


def insert_device(
    *, user_id: int, device_id: str, channel_name: str, server_id: str, now: datetime
) -> None:
    """A new socket's row (its channel name is new: nothing to update)."""
    d = DeviceConnection
    columns = ", ".join(
        _column(d, f)
        for f in ("user", "device_id", "channel_name", "server_id", "connected_at", "last_seen")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(d)} ({columns}) VALUES (%s, %s, %s, %s, %s, %s)",
            [user_id, device_id, channel_name, server_id, _when(now), _when(now)],
        )


def stop_offline_countdowns(user_id: int) -> None:
    """A device of the user is back: no call of theirs ends or leaves for their absence.
    (``updated_at`` stays: a countdown is not a change anyone was told of.)"""
    c, p = Call, Participant
    states = ", ".join(["%s"] * len(LIVE_CALL_STATES))
    deadline = _column(c, "inviter_offline_deadline")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(c)} SET {deadline} = NULL WHERE {_column(c, 'inviter')} = %s"
            f" AND {_column(c, 'state')} IN ({states}) AND {deadline} IS NOT NULL",
            [user_id, *LIVE_CALL_STATES],
        )
        deadline = _column(p, "offline_deadline")
        cursor.execute(
            f"UPDATE {_table(p)} SET {deadline} = NULL"
            f" WHERE {_column(p, 'user')} = %s AND {deadline} IS NOT NULL",
            [user_id],
        )


def presence_of(user_id: int) -> tuple[bool, bool] | None:
    """The user's presence row: (online, a grace is counting), or None if they have none."""
    u = UserPresence
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_column(u, 'online')}, {_column(u, 'offline_deadline')} IS NOT NULL"
            f" FROM {_table(u)} WHERE {_column(u, 'user')} = %s",
            [user_id],
        )
        row = cursor.fetchone()
    return None if row is None else (bool(row[0]), bool(row[1]))


def set_online(user_id: int, *, insert: bool) -> None:
    """The user is online, with no grace counting (``insert``: they have no row yet)."""
    u = UserPresence
    online, deadline = _column(u, "online"), _column(u, "offline_deadline")
    with connection.cursor() as cursor:
        if insert:
            cursor.execute(
                f"INSERT INTO {_table(u)} ({_column(u, 'user')}, {online}, {deadline})"
                " VALUES (%s, %s, NULL)",
                [user_id, True],
            )
        else:
            cursor.execute(
                f"UPDATE {_table(u)} SET {online} = %s, {deadline} = NULL"
                f" WHERE {_column(u, 'user')} = %s",
                [True, user_id],
            )
