"""Answering an invitation: accept, reject and acknowledge (API.md participant states).

Each locks the call, moves the invitee's row with a conditional update and ends the call when the
end rules say so (``rules.py``). An answer that arrives after the invitee's deadline, before the
timer worker got to it, first expires the invitation in a transaction of its own and is then
refused like any answer to a timed-out invitation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from .. import validation
from ..errors import CallError
from ..events import Outbox
from ..models import (
    RINGING_STATES,
    Call,
    CallState,
    Participant,
    ParticipantState,
    Role,
)
from ..selectors import snapshots
from .deadlines import expire
from .rules import (
    Kind,
    end_if_over,
    event,
    lock_call_with_everyone,
    move,
    record,
    refuse_if_ended,
    send_and_snapshot,
    state_changed,
)


def _lock_invitation_to_answer(
    actor: User, call_id: UUID, action: str
) -> tuple[Call, Participant, list[Participant]]:
    """Lock the call for an invitee's answer (accept, reject, ack): role and liveness checks.

    Every participant comes along (``lock_call_with_everyone``): moved in memory, they give
    the Outbox its snapshot and the end rules their rows, with no read of their own."""
    call, me, participants = lock_call_with_everyone(call_id, actor)
    # The inviter never answers their own invitation; but an inviter who quit an ongoing call
    # and was invited back by someone else answers that invitation like anyone.
    if me.role == Role.INVITER and me.invited_by_id is None:
        raise CallError("permission_denied", f"The inviter cannot {action} their own call.")
    refuse_if_ended(call)
    return call, me, participants


def _refuse_late_answer(me: Participant, now: datetime) -> None:
    """A ringing invitee past their deadline has timed out, even if the timer is still late."""
    if me.state in RINGING_STATES and me.deadline is not None and me.deadline <= now:
        raise CallError("invalid_state", "This invitation has timed out.")


class _LateAnswerError(Exception):
    """The actor's invitation is past its deadline: expire it outside the transaction first."""

    def __init__(self, participant_id: int) -> None:
        super().__init__(participant_id)
        self.participant_id = participant_id


def _move_ringing_invitation(
    actor: User, call_id: UUID, action: str, now: datetime, expired: bool, **changes: Any
) -> tuple[Call, Participant, list[Participant]]:
    """Inside the transaction: move the actor's ringing invitation (accept or reject).

    A late invitation is timed out first (``_answer_expiring_late``), then the answer is tried
    again with ``expired`` set; the check rides on the lock's read instead of a read of its own.
    """
    call, me, participants = _lock_invitation_to_answer(actor, call_id, action)
    if not expired and me.state in RINGING_STATES and me.deadline and me.deadline <= now:
        raise _LateAnswerError(me.pk)
    _refuse_late_answer(me, now)
    if not move(me, RINGING_STATES, now, deadline=None, **changes):
        raise CallError("invalid_state", f"You cannot {action} an invitation that is {me.state}.")
    me.user = actor
    return call, me, participants


def _answer_expiring_late(answer: Callable[[bool], dict[str, Any]]) -> dict[str, Any]:
    """Run an answer (accept, reject); if the invitation turned out late, expire it (in its own
    transaction, as the timer would: on SQLite a transaction takes the write lock at once) and
    answer again, which then finds it timed out."""
    try:
        return answer(False)
    except _LateAnswerError as late:
        expire(participant_id=late.participant_id)
    return answer(True)


def accept(
    *, actor: User, call_id: UUID, extended_data: str = "", device_id: str = ""
) -> dict[str, Any]:
    return _answer_expiring_late(
        lambda expired: _accept(actor, call_id, extended_data, device_id, expired)
    )


def _accept(
    actor: User, call_id: UUID, extended_data: str, device_id: str, expired: bool
) -> dict[str, Any]:
    now = timezone.now()
    with transaction.atomic():
        call, me, participants = _move_ringing_invitation(
            actor,
            call_id,
            "accept",
            now,
            expired,
            state=ParticipantState.ACCEPTED,
            extended_data=extended_data,
            device_id=device_id,
        )
        if call.state == CallState.RINGING:
            Call.objects.filter(pk=call.pk).update(state=CallState.ONGOING)
            call.state = CallState.ONGOING
        record(
            call,
            Kind.ACCEPTED,
            actor=actor,
            subject=actor,
            extended_data=extended_data,
            device_id=device_id,
        )
        box = Outbox(call)
        state_changed(box, me, device_id)
        box.snapshot_from(participants)  # me moved in memory, the call too
        return send_and_snapshot(box)


def reject(
    *,
    actor: User,
    call_id: UUID,
    reason: str = validation.DEFAULT_REJECT_REASON,
    extended_data: str = "",
    device_id: str = "",
) -> dict[str, Any]:
    return _answer_expiring_late(
        lambda expired: _reject(actor, call_id, reason, extended_data, device_id, expired)
    )


def _reject(
    actor: User, call_id: UUID, reason: str, extended_data: str, device_id: str, expired: bool
) -> dict[str, Any]:
    now = timezone.now()
    with transaction.atomic():
        call, me, participants = _move_ringing_invitation(
            actor,
            call_id,
            "reject",
            now,
            expired,
            state=ParticipantState.REJECTED,
            reason=reason,
            extended_data=extended_data,
        )
        rejected = event(
            call,
            Kind.REJECTED,
            actor=actor,
            subject=actor,
            reason=reason,
            extended_data=extended_data,
            device_id=device_id,
        )
        box = Outbox(call)
        state_changed(box, me, device_id)
        end_if_over(
            call,
            operator=actor,
            extended_data=extended_data,
            now=now,
            box=box,
            events=[rejected],  # saved there, with the end's own events
            participants=participants,  # me moved in memory
        )
        return send_and_snapshot(box)


def _ack_from_read(actor: User, call_id: UUID, now: datetime) -> dict[str, Any] | None:
    """Answer an ack that changes nothing from a plain read: the call, or the same error the
    locked path would raise; None when it may move the invitation (then the transaction decides
    again). Most acks are of this kind (a second device, a replay, a foreign or random id), and a
    stream of them must not take the write lock each: SQLite has one for the whole database."""
    me = Participant.objects.select_related("call").filter(call_id=call_id, user=actor).first()
    if me is None:
        raise CallError("not_found", "No such call.")
    if me.role == Role.INVITER and me.invited_by_id is None:
        raise CallError("permission_denied", "The inviter cannot acknowledge their own call.")
    refuse_if_ended(me.call)
    if me.state == ParticipantState.RECEIVED:
        return snapshots([me.call])[0]
    _refuse_late_answer(me, now)
    if me.state != ParticipantState.INVITING:
        raise CallError(
            "invalid_state", f"You cannot acknowledge an invitation that is {me.state}."
        )
    return None


def acknowledge(*, actor: User, call_id: UUID, device_id: str = "") -> dict[str, Any]:
    """A device shows the invitation: inviting -> received. A no-op when already received."""
    now = timezone.now()
    answered = _ack_from_read(actor, call_id, now)
    if answered is not None:
        return answered
    with transaction.atomic():
        call, me, participants = _lock_invitation_to_answer(actor, call_id, "acknowledge")
        box = Outbox(call)
        if me.state == ParticipantState.RECEIVED:
            box.snapshot_from(participants)
            return send_and_snapshot(box)
        _refuse_late_answer(me, now)
        if not move(me, (ParticipantState.INVITING,), now, state=ParticipantState.RECEIVED):
            raise CallError(
                "invalid_state", f"You cannot acknowledge an invitation that is {me.state}."
            )
        record(call, Kind.RECEIVED, actor=actor, subject=actor, device_id=device_id)
        me.user = actor
        state_changed(box, me, device_id)
        box.snapshot_from(participants)  # me moved in memory
        return send_and_snapshot(box)
