"""Online and offline: what a user's devices coming and going does to their calls.

The device lifecycle itself (sockets, presence rows, the heartbeat) is ``realtime/devices.py``;
it calls these under the user's lock when the first device connects or the last one leaves.
The countdowns they start end in ``deadlines.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from ..events import Outbox
from ..models import LIVE_CALL_STATES, Call, CallState, Participant, ParticipantState
from ..presence import user_is_online


def mark_user_offline(*, user: User, grace: float) -> None:
    """The user's last device went away: unless one comes back within ``grace`` seconds, a call
    they ring out ends ``caller_offline`` and they leave the calls they talk in."""
    _mark_inviter_offline(user=user, grace=grace)
    _mark_participant_offline(user=user, grace=grace)


def mark_user_online(*, user: User) -> None:
    """A device of the user connected: both offline countdowns stop."""
    Call.objects.filter(
        inviter=user, state__in=LIVE_CALL_STATES, inviter_offline_deadline__isnull=False
    ).update(inviter_offline_deadline=None)
    Participant.objects.filter(user=user, offline_deadline__isnull=False).update(
        offline_deadline=None
    )


def start_caller_offline_if_no_device(
    call: Call, inviter: User, now: datetime, box: Outbox
) -> None:
    """A call started with no device of the inviter connected (a REST-only caller) rings out
    with the same grace as one whose caller dropped: counted from the call's creation.

    The inviter's UserLock row, held since the start of ``invite``, is the one the WebSocket
    device lifecycle takes, so a last device dropping at this moment is seen either here or by
    its own mark_user_offline, never by neither.
    """
    if call.is_ended or user_is_online(inviter.pk):
        return
    deadline = now + timedelta(seconds=settings.CALLSITE["CALLER_OFFLINE_GRACE"])
    Call.objects.filter(pk=call.pk).update(inviter_offline_deadline=deadline)
    call.inviter_offline_deadline = deadline
    box.schedule_caller_offline(deadline)


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
