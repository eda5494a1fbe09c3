"""Online and offline: what a user's devices coming and going does to their calls and presence.

The device lifecycle itself (sockets, connection rows, the heartbeat) is ``realtime/devices.py``;
it calls these under the user's lock when a device connects or the last one leaves. The call
countdowns they start end in ``deadlines.py``; the presence grace ends in ``expire_presence``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from .. import presence
from ..events import Outbox
from ..models import (
    LIVE_CALL_STATES,
    Call,
    CallState,
    Participant,
    ParticipantState,
    UserPresence,
)
from ..presence import connected_user_ids
from . import connect_sql
from .locking import lock_users


def mark_user_offline(*, user: User, grace: float) -> None:
    """The user's last device went away: unless one comes back within ``grace`` seconds, a call
    they ring out ends ``caller_offline`` and they leave the calls they talk in; unless one
    comes back within ``PRESENCE_GRACE`` seconds, they go offline for their subscribers.

    Call under the user's lock (``lock_users``), in the transaction that removed the device.
    """
    _mark_inviter_offline(user=user, grace=grace)
    _mark_participant_offline(user=user, grace=grace)
    _start_presence_grace(user=user)


def mark_user_online(*, user: User) -> bool:
    """A device of the user connected: every offline countdown stops. True if this brought the
    user online for their subscribers (``presence.changed`` goes out after commit).

    Call under the user's lock, in the transaction that recorded the device.
    """
    connect_sql.stop_offline_countdowns(user.pk)
    state = connect_sql.presence_of(user.pk)
    if state is not None and state[0]:
        # Online already: the first device after a reload (within the grace), or another one.
        # Subscribers were never told otherwise, so they hear nothing now either.
        if state[1]:
            connect_sql.set_online(user.pk, insert=False)
        return False
    connect_sql.set_online(user.pk, insert=state is None)
    presence.publish_on_commit(user.get_username(), True)
    return True


def _start_presence_grace(*, user: User) -> None:
    deadline = timezone.now() + timedelta(seconds=presence.grace_seconds())
    # Only an online user has a grace to start; one already counting keeps the earlier deadline.
    started = UserPresence.objects.filter(
        user_id=user.pk, online=True, offline_deadline__isnull=True
    ).update(offline_deadline=deadline)
    if started:
        presence.schedule_offline_on_commit(user.pk, deadline)


def expire_presence(*, user_id: int) -> bool:
    """The grace of a user with no device is over: offline. Idempotent: False if nothing to do."""
    return bool(expire_presence_many(user_ids=[user_id]))


def expire_presence_many(*, user_ids: list[int]) -> list[int]:
    """The graces of these users are over: those with no device go offline, in one transaction.
    Returns the ids this call turned offline; idempotent, like every expiry.

    Conditional on the deadline still being set and past (a device that came back cleared it),
    and on no fresh connection, under the users' locks, so it never races a connect. The timer
    worker's batch path: after a disconnect wave (a deploy, a network blip) thousands of graces
    end together, and one transaction apiece cost 7 statements each (54% of the worker's CPU
    during the production cycles, bench/README.md "Issue 9, seventh round").
    """
    at = timezone.now()
    # Read before any transaction: on SQLite a transaction takes the write lock at once.
    due = sorted(
        UserPresence.objects.filter(
            user_id__in=set(user_ids), offline_deadline__lte=at
        ).values_list("user_id", flat=True)
    )
    if not due:
        return []
    with transaction.atomic():
        lock_users(due)
        names = dict(
            UserPresence.objects.filter(
                user_id__in=due, online=True, offline_deadline__lte=at
            ).values_list("user_id", "user__username")
        )
        # Every connect clears the deadline, so a connected user here means a row written
        # outside the lifecycle; whatever wrote it, a connected user is online: void the
        # countdown.
        connected = connected_user_ids(list(names))
        if connected:
            UserPresence.objects.filter(user_id__in=connected).update(offline_deadline=None)
        gone = sorted(set(names) - connected)
        if gone:
            UserPresence.objects.filter(user_id__in=gone).update(
                online=False, offline_deadline=None
            )
            presence.publish_many_on_commit([(names[pk], False) for pk in gone])
        return gone


def caller_offline_deadline(now: datetime, *, connected: bool) -> datetime | None:
    """When a call started now ends as caller_offline, if no device of the inviter is
    ``connected`` (a REST-only caller): it rings out with the same grace as one whose caller
    dropped, counted from the call's creation. None if a device is connected.

    ``connected`` must be read under the inviter's UserLock, held since the start of ``invite``:
    it is the one the WebSocket device lifecycle takes, so a last device dropping at this
    moment is seen either there or by its own mark_user_offline, never by neither.
    """
    if connected:
        return None
    return now + timedelta(seconds=settings.CALLSITE["CALLER_OFFLINE_GRACE"])


def _mark_inviter_offline(*, user: User, grace: float) -> None:
    """Calls the user rings out end unless they return in time."""
    now = timezone.now()
    with transaction.atomic():
        calls = list(
            Call.objects.select_for_update().filter(
                inviter=user, state=CallState.RINGING, inviter_offline_deadline__isnull=True
            )
        )
        for call in calls:
            # Counted from the later of the call's creation and the disconnect.
            deadline = max(now, call.created_at) + timedelta(seconds=grace)
            Call.objects.filter(pk=call.pk).update(inviter_offline_deadline=deadline)
            call.inviter_offline_deadline = deadline
            box = Outbox(call)
            box.schedule_caller_offline(deadline)
            box.send_on_commit()


def _mark_participant_offline(*, user: User, grace: float) -> None:
    """They leave the calls they talk in unless they return.

    A reload or a network change reconnects within seconds and keeps the call; a closed tab or
    a dead phone does not, and without this the user would stay accepted, and busy, for ever.
    """
    deadline = timezone.now() + timedelta(seconds=grace)
    mine = Participant.objects.filter(
        user=user,
        state=ParticipantState.ACCEPTED,
        call__state__in=LIVE_CALL_STATES,
        offline_deadline__isnull=True,
    )
    for p in mine.select_related("call"):
        Participant.objects.filter(pk=p.pk).update(offline_deadline=deadline)
        box = Outbox(p.call)
        box.schedule_participant_offline(p.pk, deadline)
        box.send_on_commit()
