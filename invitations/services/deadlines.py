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

from ..events import Outbox, send_on_commit
from ..models import (
    RINGING_STATES,
    Call,
    CallState,
    EndReason,
    Participant,
    ParticipantState,
    Role,
)
from . import expiry_sql, rules
from .statements import insert_events


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
    """Set-based: the same few queries for a batch of one call or of a hundred.

    Reads the due calls' rows once, under their locks; decides in memory what ``expire`` and
    ``end_if_over`` would do call by call; then writes it with one conditional UPDATE per kind
    of change and one INSERT of every CallEvent, and hands every event over after commit in
    one go. A conditional UPDATE that moves fewer rows than decided means a writer that did
    not take the call lock: the batch rolls back (``_BatchRacedError``).
    """
    call_ids = set(
        Participant.objects.ringing()
        .filter(pk__in=ids, deadline__lte=now)
        .values_list("call_id", flat=True)
        .distinct()
    )
    if not call_ids:
        return []
    # The inviter comes along for the events' snapshots; only the call rows are locked.
    calls = {
        c.pk: c
        for c in Call.objects.select_for_update(of=("self",))
        .select_related("inviter")
        .filter(pk__in=call_ids)
        .order_by("pk")
    }
    now = timezone.now()  # the changes' stamp, taken under the locks (transitions.py, 1.)
    # Every participant of these calls, read once under the locks, in each call's order: who
    # is due, the end rules and the snapshots all come from these rows.
    members: dict[Any, list[Participant]] = {}
    for p in (
        Participant.objects.filter(call_id__in=calls)
        .select_related("user")
        .order_by("call_id", "joined_at", "id")
    ):
        members.setdefault(p.call_id, []).append(p)
    # Whoever invited someone is a participant of that call too: their user is already here,
    # which spares a third model per row (a third of the batch's time went to building them).
    for everyone in members.values():
        users = {p.user_id: p.user for p in everyone}
        for p in everyone:
            if p.invited_by_id in users:
                p.invited_by = users[p.invited_by_id]
    wanted = set(ids)
    due = [
        p
        for everyone in members.values()
        for p in everyone
        if p.pk in wanted and p.state in RINGING_STATES and p.deadline and p.deadline <= now
    ]
    if not due:
        return []
    due.sort(key=lambda p: (p.joined_at, p.pk))  # the order expire_many has always returned
    due_pks = {p.pk for p in due}
    events = [rules.event(calls[p.call_id], rules.Kind.TIMEOUT, subject=p.user) for p in due]
    for p in due:
        p.state, p.deadline, p.updated_at = ParticipantState.TIMEOUT, None, now
    ending: dict[str, list[Any]] = {}  # end reason -> call ids
    cancelled: list[Participant] = []
    boxes = []
    for call_id in dict.fromkeys(p.call_id for p in due):
        call, everyone = calls[call_id], members[call_id]
        box = Outbox(call)
        boxes.append(box)
        for p in everyone:
            if p.pk in due_pks:
                box.to_user(p.user_id, "call.invitation_timeout")
                box.ring_stopped(p, "timeout")
                rules.state_changed(box, p)
        reason = None
        if not call.is_ended:
            reason = rules.end_reason_for(call, [(p.role, p.state) for p in everyone])
        if reason is not None:
            # end_call's effects, decided here and written below for every ending call at once.
            ending.setdefault(reason, []).append(call_id)
            call.state, call.end_reason, call.ended_at = CallState.ENDED, reason, now
            call.inviter_offline_deadline = None
            for p in everyone:
                if p.state not in RINGING_STATES:
                    continue
                p.state, p.deadline, p.updated_at = ParticipantState.CANCELLED, None, now
                cancelled.append(p)
                events.append(
                    rules.event(call, rules.Kind.CANCELLED, subject=p.user, because="call_ended")
                )
                box.to_user(p.user_id, "call.invitation_cancelled", operator=None, extended_data="")
                box.ring_stopped(p, "ended")
                rules.state_changed(box, p)
            events.append(rules.event(call, rules.Kind.ENDED, reason=reason, extended_data=""))
            box.to_everyone("call.ended", operator=None, reason=reason, extended_data="")
        box.snapshot_from(everyone)
    _write_all(due, cancelled, ending, now)
    insert_events(events)
    send_on_commit(boxes)
    return [p.pk for p in due]


def _write_all(
    due: list[Participant],
    cancelled: list[Participant],
    ending: dict[str, list[Any]],
    now: datetime,
) -> None:
    """The batch's decisions, each one conditional UPDATE that must move every row it names."""
    changes = [(expiry_sql.time_out([p.pk for p in due], now), len(due))]
    if cancelled:
        changes.append((expiry_sql.cancel([p.pk for p in cancelled], now), len(cancelled)))
    for reason, call_ids in ending.items():
        changes.append((expiry_sql.end_calls(call_ids, reason, now), len(call_ids)))
    if any(moved != expected for moved, expected in changes):
        raise _BatchRacedError()


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
        at = timezone.now()  # the change's stamp, taken under the lock (transitions.py, 1.)
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
        change = rules.Change(call, Outbox(call), at)
        if caller_offline:
            rules.end_call(change, EndReason.CALLER_OFFLINE)
        else:
            me.state, me.offline_deadline, me.updated_at = ParticipantState.QUIT, None, at
            rules.record(call, rules.Kind.QUIT, subject=me.user, because="offline")
            rules.after_quit(change, me)
        change.box.send_on_commit()
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
        now = timezone.now()  # the change's stamp, taken under the lock (transitions.py, 1.)
        rules.end_call(rules.Change(call, box, now), EndReason.CALLER_OFFLINE)
        box.send_on_commit()
        return True
