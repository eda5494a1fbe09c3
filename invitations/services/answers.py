"""Answering an invitation: accept, reject and acknowledge (API.md participant states).

Each locks the call, moves the invitee's row with a conditional update and ends the call when the
end rules say so (``rules.py``). An answer that arrives after the invitee's deadline, before the
timer worker got to it, first expires the invitation in a transaction of its own and is then
refused like any answer to a timed-out invitation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from ..snapshots import call_snapshot
from .deadlines import expire
from .locking import lock_call_with_everyone
from .rules import (
    Change,
    Kind,
    end_if_over,
    event,
    move,
    record,
    refuse_if_ended,
    send_and_snapshot,
    state_changed,
)
from .statements import CallChangedWithoutLockError, insert_events, update_call


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


@dataclass(frozen=True)
class _Answer:
    """An invitee's answer (accept or reject) as the client sent it."""

    actor: User
    call_id: UUID
    extended_data: str
    device_id: str
    reason: str = ""  # a rejection's

    def recorded(self) -> dict[str, Any]:
        """The answer's CallEvent fields: who answered, and what they sent with it."""
        sent = {"reason": self.reason} if self.reason else {}
        sent |= {"extended_data": self.extended_data, "device_id": self.device_id}
        return {"actor": self.actor, "subject": self.actor, **sent}

    def change(self, call: Call, box: Outbox, now: datetime) -> Change:
        return Change(call, box, now, self.actor, self.extended_data, self.device_id)


def _move_ringing_invitation(
    answer: _Answer, action: str, expired: bool, **changes: Any
) -> tuple[Call, Participant, list[Participant], datetime]:
    """Inside the transaction: move the actor's ringing invitation (accept or reject), with the
    answer's extended data; returns the time of the change, read under the call's lock so that
    the participants' ``updated_at`` (a snapshot's version) follow the order of the changes.

    A late invitation is timed out first (``_answer_expiring_late``), then the answer is tried
    again with ``expired`` set; the check rides on the lock's read instead of a read of its own.
    """
    call, me, participants = _lock_invitation_to_answer(answer.actor, answer.call_id, action)
    now = timezone.now()
    if not expired and me.state in RINGING_STATES and me.deadline and me.deadline <= now:
        raise _LateAnswerError(me.pk)
    _refuse_late_answer(me, now)
    changes["extended_data"] = answer.extended_data
    if not move(me, RINGING_STATES, now, deadline=None, **changes):
        raise CallError("invalid_state", f"You cannot {action} an invitation that is {me.state}.")
    me.user = answer.actor
    return call, me, participants, now


def _answered(call: Call, me: Participant, device_id: str, stop: str) -> Outbox:
    """The outbox of an invitee's answer: everyone hears their new state, and the devices a
    push rang stop ringing (``stop``: the reason), except the one that answered."""
    box = Outbox(call)
    state_changed(box, me, device_id)
    box.ring_stopped(me, stop, device_id)
    return box


def _answer_expiring_late(
    run: Callable[[_Answer, bool], dict[str, Any]], answer: _Answer
) -> dict[str, Any]:
    """Run an answer (``_accept``, ``_reject``); if the invitation turned out late, expire it (in
    its own transaction, as the timer would: on SQLite a transaction takes the write lock at
    once) and answer again, which then finds it timed out."""
    try:
        return run(answer, False)
    except _LateAnswerError as late:
        expire(participant_id=late.participant_id)
    return run(answer, True)


def accept(
    *, actor: User, call_id: UUID, extended_data: str = "", device_id: str = ""
) -> dict[str, Any]:
    return _answer_expiring_late(_accept, _Answer(actor, call_id, extended_data, device_id))


def _accept(answer: _Answer, expired: bool) -> dict[str, Any]:
    with transaction.atomic():
        call, me, participants, _ = _move_ringing_invitation(
            answer,
            "accept",
            expired,
            state=ParticipantState.ACCEPTED,
            device_id=answer.device_id,
        )
        accepted = event(call, Kind.ACCEPTED, **answer.recorded())
        if call.state == CallState.RINGING:
            # The first answer: the call goes ongoing, recorded in the same statement.
            update_call(call, [accepted], state=CallState.ONGOING)
            call.state = CallState.ONGOING
        else:
            insert_events([accepted])
        box = _answered(call, me, answer.device_id, "answered_elsewhere")
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
    answer = _Answer(actor, call_id, extended_data, device_id, reason)
    return _answer_expiring_late(_reject, answer)


def _reject(answer: _Answer, expired: bool) -> dict[str, Any]:
    with transaction.atomic():
        call, me, participants, now = _move_ringing_invitation(
            answer, "reject", expired, state=ParticipantState.REJECTED, reason=answer.reason
        )
        box = _answered(call, me, answer.device_id, "rejected")
        end_if_over(
            answer.change(call, box, now),
            events=[event(call, Kind.REJECTED, **answer.recorded())],  # saved with the end's own
            participants=participants,  # me moved in memory
        )
        return send_and_snapshot(box)


def acknowledge(*, actor: User, call_id: UUID, device_id: str = "") -> dict[str, Any]:
    """A device shows the invitation: inviting -> received. A no-op when already received.

    Under the call's lock, like every answer. Each ack's event carries the whole call, and a
    client keeps the newest by its participants' ``updated_at``: a snapshot read outside the
    lock, or stamped before it, could be the newest and still miss another invitee's ack (the
    phones of a group call ack within the same milliseconds), and the inviter would see
    "calling" for someone whose phone rings. An ack that changes nothing (a second device, a
    replay) holds the lock for one read; a socket's message budget bounds how many it sends.
    """
    with transaction.atomic():
        call, me, participants = _lock_invitation_to_answer(actor, call_id, "acknowledge")
        now = timezone.now()  # under the lock: versions follow the order of the changes
        if me.state not in RINGING_STATES:
            raise CallError(
                "invalid_state", f"You cannot acknowledge an invitation that is {me.state}."
            )
        _refuse_late_answer(me, now)
        if me.state == ParticipantState.RECEIVED:
            return call_snapshot(call, participants)
        if not move(me, (ParticipantState.INVITING,), now, state=ParticipantState.RECEIVED):
            raise CallChangedWithoutLockError(f"Participant {me.pk} moved under its call's lock.")
        record(call, Kind.RECEIVED, actor=actor, subject=actor, device_id=device_id)
        box = Outbox(call)
        state_changed(box, me, device_id)
        box.snapshot_from(participants)  # me moved in memory
        return send_and_snapshot(box)
