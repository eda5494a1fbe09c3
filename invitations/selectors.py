"""Read-side queries: what a user may see of calls and people, who is busy, what is due."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

from . import sql
from .errors import CallError, validation_error
from .models import (
    ACTIVE_STATES,
    LIVE_CALL_STATES,
    RINGING_STATES,
    Block,
    Call,
    CallState,
    DeviceConnection,
    Participant,
    ParticipantState,
    UserPresence,
)
from .presence import fresh_since, online_user_ids
from .snapshots import call_shape, call_snapshot, display_name, participant_shape
from .sql import field, marks, table, when

UserModel = get_user_model()


def _with_participants(qs: QuerySet[Call]) -> QuerySet[Call]:
    return qs.select_related("inviter").prefetch_related(
        Prefetch("participants", queryset=Participant.objects.select_related("user", "invited_by"))
    )


def snapshots(calls: list[Call]) -> list[dict[str, Any]]:
    return [call_snapshot(c, list(c.participants.all())) for c in calls]


def calls_for_user(
    user: User, *, state: str | None = None, missed: str | None = None
) -> QuerySet[Call]:
    """The user's calls, newest first; ``missed=true``: calls they were invited to and missed."""
    qs = Call.objects.filter(participants__user=user)
    if state is not None:
        if state not in CallState.values:
            raise validation_error("state", f"Must be one of {', '.join(CallState.values)}.")
        qs = qs.filter(state=state)
    if missed is not None:
        flag = missed.strip().lower()
        if flag not in {"true", "false", "1", "0"}:
            raise validation_error("missed", "Must be true or false.")
        mine = Participant.objects.missed().filter(user=user).values("call_id")
        qs = qs.filter(pk__in=mine) if flag in {"true", "1"} else qs.exclude(pk__in=mine)
    return _with_participants(qs.order_by("-created_at", "-pk").distinct())


def call_for_user(user: User, call_id: UUID) -> Call:
    call = _with_participants(Call.objects.filter(pk=call_id, participants__user=user)).first()
    if call is None:
        raise CallError("not_found", "No such call.")
    return call


SESSION_STATES = [*RINGING_STATES, ParticipantState.ACCEPTED]  # what session.ready lists


def session_snapshots(user: User) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """What ``session.ready`` lists, as API.md's Call snapshots: the calls ringing for the user
    (oldest first) and the call they talk in, if any (busy users are in at most one).

    One plain statement, calls and participants and names together. Every socket's connect
    pays for it, all at once in a reconnect storm; through the ORM (a call read and two
    prefetches, then model instances) a ringing call cost about 0.7 ms of CPU, and a user
    invited to many calls delayed everyone's connect (issue 9, py-spy of the timers bench).
    """
    with connection.cursor() as cursor:
        cursor.execute(_session_sql(), [user.pk, *SESSION_STATES, *LIVE_CALL_STATES])
        rows = [_SessionRow._make(r) for r in cursor.fetchall()]
    incoming: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for _, members in itertools.groupby(rows, key=lambda r: r.call_id):
        everyone = list(members)
        snapshot = _session_snapshot(everyone)
        mine = next(r for r in everyone if r.user_id == user.pk)
        if mine.state == ParticipantState.ACCEPTED:
            current = snapshot  # the newest, should there ever be two
        else:
            incoming.append(snapshot)
    return incoming, current


class _SessionRow(NamedTuple):
    call_id: Any
    inviter: str
    type: str
    call_state: str
    end_reason: str | None
    timeout: int
    call_data: str
    created_at: datetime
    ended_at: datetime | None
    user_id: int
    user: str
    role: str
    state: str
    reason: str | None
    extended_data: str
    invited_by: str | None
    deadline: datetime | None
    updated_at: datetime | None


def _session_snapshot(everyone: list[_SessionRow]) -> dict[str, Any]:
    first = everyone[0]
    return call_shape(
        id=UUID(str(first.call_id)),  # SQLite gives the hex digits, PostgreSQL a UUID
        inviter=first.inviter,
        type=first.type,
        state=first.call_state,
        end_reason=first.end_reason,
        timeout=first.timeout,
        extended_data=first.call_data,
        created_at=_aware(first.created_at),
        ended_at=_aware(first.ended_at),
        participants=[
            participant_shape(
                user=r.user,
                role=r.role,
                state=r.state,
                reason=r.reason,
                extended_data=r.extended_data,
                invited_by=r.invited_by,
                deadline=_aware(r.deadline),
                updated_at=_aware(r.updated_at),
            )
            for r in everyone
        ],
    )


def _aware(value: datetime | None) -> datetime | None:
    """A time as the ORM gives it: SQLite's columns come back naive, in UTC (USE_TZ).

    ``sql.from_db`` does the same through Django's converters, for any column, but took 3.8 us a
    time against 0.9 here, and every connect of a user with a live call converts two per call
    and two per participant (session_snapshots with one 1:1 call: about 117 vs 105 us, SQLite)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@functools.cache
def _session_sql() -> str:
    """The user's live calls in which they ring or talk, each with all its participants in
    the call's order (joined_at, id), calls oldest first: ``_SessionRow``'s columns."""
    part, call, user = (table(m) for m in (Participant, Call, UserModel))
    username = field(UserModel, UserModel.USERNAME_FIELD)
    name = connection.ops.quote_name(username.column)
    columns = (
        f"c.id, inviter.{name}, c.type, c.state, c.end_reason, c.timeout, c.extended_data,"
        f" c.created_at, c.ended_at, p.user_id, who.{name}, p.role, p.state, p.reason,"
        f" p.extended_data, by_user.{name}, p.deadline, p.updated_at"
    )
    return (
        f"SELECT {columns} FROM {call} c"
        f" INNER JOIN {user} inviter ON inviter.id = c.inviter_id"
        f" INNER JOIN {part} p ON p.call_id = c.id"
        f" INNER JOIN {user} who ON who.id = p.user_id"
        f" LEFT OUTER JOIN {user} by_user ON by_user.id = p.invited_by_id"
        f" WHERE c.id IN (SELECT call_id FROM {part} WHERE user_id = %s"
        f" AND state IN ({marks(SESSION_STATES)}))"
        f" AND c.state IN ({marks(LIVE_CALL_STATES)})"
        " ORDER BY c.created_at, c.id, p.joined_at, p.id"
    )


def in_live_call(user: User, call_id: Any = None) -> bool:
    """Whether the user rings, is invited to or talks in a call that has not ended (that call,
    when ``call_id`` is given): who may have TURN credentials."""
    qs = Participant.objects.active().filter(user=user, call__state__in=LIVE_CALL_STATES)
    if call_id is not None:
        try:
            qs = qs.filter(call_id=UUID(str(call_id)))
        except ValueError:
            return False
    return qs.exists()


def blocks_of(user: User) -> QuerySet[Block]:
    """The users this user blocked, newest first, as ``Block`` rows with the blocked user."""
    return Block.objects.filter(blocker=user).select_related("blocked").order_by("-created_at")


def people(user: User, search: str | None = None) -> QuerySet:
    qs = UserModel.objects.filter(is_active=True).exclude(pk=user.pk).order_by("username")
    if search:
        # PostgreSQL cannot compare text with NUL in it; no username contains one anyway.
        term = search.replace("\x00", "").strip()[:150]
        qs = qs.filter(
            Q(username__icontains=term)
            | Q(first_name__icontains=term)
            | Q(last_name__icontains=term)
        )
    return qs


def user_snapshots(users: list[User]) -> list[dict[str, Any]]:
    online = online_user_ids([u.pk for u in users])
    return [
        {"username": u.get_username(), "display_name": display_name(u), "online": u.pk in online}
        for u in users
    ]


def presence_snapshot(usernames: list[str]) -> dict[str, Any]:
    """The ``presence.snapshot`` frame: these users' presence, in the order asked, leaving out
    usernames nobody has."""
    found: dict[str, bool] = {}
    if usernames:
        with connection.cursor() as cursor:
            cursor.execute(_presence_snapshot_sql(len(usernames)), usernames)
            found = {name: bool(online) for name, online in cursor.fetchall()}
    return {
        "type": "presence.snapshot",
        "users": [{"user": name, "online": found[name]} for name in usernames if name in found],
    }


@functools.cache
def _presence_snapshot_sql(names: int) -> str:
    """The users of ``names`` usernames with their presence row's ``online`` (what
    ``online_user_ids`` reads), in one statement. Written in SQL: every socket's subscribe runs
    it, all at once in a reconnect storm, and the ORM's query cost more to build than to run."""
    users, presence = table(UserModel), table(UserPresence)
    return (
        f"SELECT u.username, p.online FROM {users} u LEFT JOIN {presence} p ON p.user_id = u.id"
        f" WHERE u.username IN ({marks(names)})"
    )


@dataclass(frozen=True)
class Availability:
    """Who can be rung, read once under the per-user locks (``availability``)."""

    busy: frozenset[int]  # ringing for, or talking in, another call that has not ended
    blocked: frozenset[int]  # blocked the caller
    caller_online: bool  # the caller holds a fresh device connection (never asked: False)

    @property
    def refusing(self) -> frozenset[int]:
        """Who answers busy: a block looks exactly like busy, so it is not revealed."""
        return self.busy | self.blocked


def active_users_named(names: list[str]) -> list[User]:
    """The active users with these usernames (any order), full instances, in one plain
    statement: every invitation resolves its invitees first, and through the ORM the read cost
    about four times its statement's CPU (bench/README.md, "Issue 9, seventh round")."""
    if not names:
        return []
    statement, users = _users_named_sql(len(names))
    with connection.cursor() as cursor:
        cursor.execute(statement, [*names, True])
        return [users.instance(row) for row in cursor.fetchall()]


@functools.cache
def _users_named_sql(count: int) -> tuple[str, sql.Columns]:
    user_model = get_user_model()
    users = sql.columns(user_model, "u")
    q = connection.ops.quote_name
    return (
        f"SELECT {users.sql} FROM {table(user_model)} u"
        f" WHERE u.{q('username')} IN ({marks(count)}) AND u.{q('is_active')} = %s",
        users,
    )


def availability(
    caller_id: int,
    user_ids: list[int],
    *,
    exclude_call: Call | None = None,
    caller_presence: bool = False,
) -> Availability:
    """Busy users, users who blocked the caller and (``caller_presence``) whether the caller is
    connected: one UNION read for what an invitation needs to know before it writes.

    Written in SQL, not built by the ORM: on the hottest write of all, building this query
    through three querysets and a union cost more than running it (17% of a REST invite's CPU,
    py-spy, issue 9)."""
    if not user_ids:
        return Availability(busy=frozenset(), blocked=frozenset(), caller_online=False)
    sql = _availability_sql(len(user_ids), exclude_call is not None, caller_presence)
    values: list[Any] = [*ACTIVE_STATES, *LIVE_CALL_STATES, *user_ids]
    if exclude_call is not None:
        values.append(Call._meta.pk.get_db_prep_value(exclude_call.pk, connection))
    values += [caller_id, *user_ids]
    if caller_presence:
        values += [caller_id, when(fresh_since())]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        rows = cursor.fetchall()
    return Availability(
        busy=frozenset(uid for tag, uid in rows if tag == "busy"),
        blocked=frozenset(uid for tag, uid in rows if tag == "blocked"),
        caller_online=any(tag == "online" for tag, _ in rows),
    )


@functools.cache
def _availability_sql(users: int, excluding: bool, presence: bool) -> str:
    """The statement for ``users`` ids (its parameters in the order ``availability`` gives)."""
    part, call, block, device = (table(m) for m in (Participant, Call, Block, DeviceConnection))
    ids = marks(users)
    busy = (
        f"SELECT 'busy', p.user_id FROM {part} p INNER JOIN {call} c ON c.id = p.call_id"
        f" WHERE p.state IN ({marks(ACTIVE_STATES)})"
        f" AND c.state IN ({marks(LIVE_CALL_STATES)}) AND p.user_id IN ({ids})"
        + (" AND p.call_id <> %s" if excluding else "")
    )
    blocked = (
        f"SELECT 'blocked', blocker_id FROM {block} WHERE blocked_id = %s AND blocker_id IN ({ids})"
    )
    parts = [busy, blocked]
    if presence:
        parts.append(
            f"SELECT 'online', user_id FROM {device} WHERE user_id = %s AND last_seen >= %s"
        )
    return " UNION ".join(parts)


def pending_deadlines() -> list[tuple[float, str, Any]]:
    """Every deadline the timer worker must watch: (unix time, kind, id)."""
    rows: list[tuple[float, str, Any]] = [
        (d.timestamp(), "invitation", pk)
        for pk, d in Participant.objects.ringing()
        .filter(deadline__isnull=False)
        .values_list("pk", "deadline")
        if d is not None
    ]
    rows += [
        (d.timestamp(), "participant_offline", pk)
        for pk, d in Participant.objects.filter(
            state=ParticipantState.ACCEPTED,
            offline_deadline__isnull=False,
            call__state__in=LIVE_CALL_STATES,
        ).values_list("pk", "offline_deadline")
        if d is not None
    ]
    rows += [
        (d.timestamp(), "caller_offline", str(pk))
        for pk, d in Call.objects.filter(
            state=CallState.RINGING, inviter_offline_deadline__isnull=False
        ).values_list("pk", "inviter_offline_deadline")
        if d is not None
    ]
    rows += [
        (d.timestamp(), "presence_offline", pk)
        for pk, d in UserPresence.objects.filter(
            online=True, offline_deadline__isnull=False
        ).values_list("user_id", "offline_deadline")
        if d is not None
    ]
    return rows
