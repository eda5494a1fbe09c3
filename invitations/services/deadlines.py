"""The expiries: what happens when a deadline passes (the timer worker calls these).

Each is idempotent and conditional on the deadline still being due, so a late, repeated or
second worker's timer does nothing: exactly one caller wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from ..events import Outbox
from ..models import (
    Call,
    CallEvent,
    CallState,
    EndReason,
    Participant,
    ParticipantState,
    Role,
)
from .rules import Kind, after_quit, end_call, end_if_over, record, state_changed


def expire(*, participant_id: int) -> bool:
    """Time out a ringing invitee whose deadline has passed. Idempotent: False if nothing to do."""
    # Checked before any transaction: on SQLite a transaction takes the write lock at once.
    due = (
        Participant.objects.ringing()
        .filter(pk=participant_id, deadline__lte=timezone.now())
        .exists()
    )
    return due and bool(expire_many(participant_ids=[participant_id]))


def expire_many(*, participant_ids: list[int]) -> list[int]:
    """Time out many ringing invitees whose deadline passed; returns the ids this call expired.

    The timer worker's batch path: one transaction for the whole batch instead of one per
    invitee, because at thousands of deadlines per second the per-transaction cost (BEGIN,
    locks, COMMIT and its fsync, one event publication) is what made timeouts run late.
    The guarantees are ``expire``'s: the calls are locked first (in primary-key order, so two
    workers' batches never deadlock each other), the participants move with one conditional
    UPDATE, each expired invitee gets its ``timeout`` CallEvent, events go out after commit, and
    each call then follows the same end rules. If the conditional UPDATE moves fewer rows than
    the locked read promised (a writer that did not take the call lock), the batch rolls back
    and every invitee goes through ``expire`` one by one, so nobody is expired twice or missed.
    """
    ids = sorted(set(participant_ids))
    if not ids:
        return []
    at = timezone.now()
    try:
        with transaction.atomic():
            return _expire_batch(ids, at)
    except _BatchRacedError:
        if len(ids) == 1:
            return []  # someone else moved it first
        return [pk for pk in ids if expire(participant_id=pk)]


class _BatchRacedError(Exception):
    """The batch's conditional update lost a row: undo the batch, fall back to one by one."""


def _expire_batch(ids: list[int], now: datetime) -> list[int]:
    call_ids = set(
        Participant.objects.ringing()
        .filter(pk__in=ids, deadline__lte=now)
        .values_list("call_id", flat=True)
        .distinct()
    )
    if not call_ids:
        return []
    # The inviter comes along for the events' snapshots (one query, not one per call); only
    # the call rows are locked.
    calls = {
        c.pk: c
        for c in Call.objects.select_for_update(of=("self",))
        .select_related("inviter")
        .filter(pk__in=call_ids)
        .order_by("pk")
    }
    # Read again under the call locks: only these rows may move now.
    due = list(
        Participant.objects.ringing()
        .select_related("user")
        .filter(pk__in=ids, call_id__in=calls, deadline__lte=now)
    )
    if not due:
        return []
    won = (
        Participant.objects.ringing()
        .filter(pk__in=[p.pk for p in due], deadline__lte=now)
        .update(state=ParticipantState.TIMEOUT, deadline=None, updated_at=now)
    )
    if won != len(due):
        raise _BatchRacedError()
    CallEvent.objects.bulk_create(
        [CallEvent(call=calls[p.call_id], kind=Kind.TIMEOUT, subject=p.user, data={}) for p in due]
    )
    by_call: dict[Any, list[Participant]] = {}
    for p in due:
        p.state, p.deadline, p.updated_at = ParticipantState.TIMEOUT, None, now
        by_call.setdefault(p.call_id, []).append(p)
    # Every call's (role, state) pairs after the update, in one query rather than one per call.
    states: dict[Any, list[tuple[str, str]]] = {call_id: [] for call_id in by_call}
    for call_id, role, state in Participant.objects.filter(call_id__in=by_call).values_list(
        "call_id", "role", "state"
    ):
        states[call_id].append((role, state))
    for call_id, expired in by_call.items():
        call = calls[call_id]
        box = Outbox(call)
        for p in expired:
            box.to_user(p.user_id, "call.invitation_timeout")
            state_changed(box, p)
        end_if_over(call, operator=None, extended_data="", now=now, box=box, rows=states[call_id])
        box.send_on_commit()
    return [p.pk for p in due]


def expire_participant_offline(*, participant_id: int) -> bool:
    """Quit, on their behalf, a participant whose devices stayed away for the whole grace.

    An inviter whose call still rings is the caller-offline rule instead: the call ends
    ``caller_offline``, whichever of the two timers fires first.
    """
    at = timezone.now()
    call_id = (
        Participant.objects.filter(
            pk=participant_id, state=ParticipantState.ACCEPTED, offline_deadline__lte=at
        )
        .values_list("call_id", flat=True)
        .first()
    )
    if call_id is None:
        return False
    with transaction.atomic():
        call = Call.objects.select_for_update().select_related("inviter").get(pk=call_id)
        if call.is_ended:
            return False
        me = Participant.objects.select_related("user").get(pk=participant_id)
        caller_offline = call.state == CallState.RINGING and me.role == Role.INVITER
        # Conditional on the deadline too: a device that came back has cleared it.
        changes: dict[str, Any] = {"offline_deadline": None, "updated_at": at}
        if not caller_offline:
            changes["state"] = ParticipantState.QUIT
        won = Participant.objects.filter(
            pk=participant_id, state=ParticipantState.ACCEPTED, offline_deadline__lte=at
        ).update(**changes)
        if not won:
            return False
        box = Outbox(call)
        if caller_offline:
            end_call(
                call, EndReason.CALLER_OFFLINE, operator=None, extended_data="", now=at, box=box
            )
        else:
            me.state, me.offline_deadline, me.updated_at = ParticipantState.QUIT, None, at
            record(call, Kind.QUIT, subject=me.user, because="offline")
            after_quit(call, me, operator=None, extended_data="", device_id="", now=at, box=box)
        box.send_on_commit()
        return True


def expire_caller_offline(*, call_id: UUID) -> bool:
    """End a ringing call whose inviter stayed offline for the whole grace period."""
    at = timezone.now()
    with transaction.atomic():
        call = (
            Call.objects.select_for_update()
            .filter(
                pk=call_id,
                state=CallState.RINGING,
                inviter_offline_deadline__lte=at,
            )
            .first()
        )
        if call is None:
            return False
        box = Outbox(call)
        end_call(call, EndReason.CALLER_OFFLINE, operator=None, extended_data="", now=at, box=box)
        box.send_on_commit()
        return True
