"""What every transition shares: locking, the conditional move, recording, and the rules.

Kept together because they read best in one place: a transition locks (``locking.py``: the
call, then users in a fixed order), moves rows only if they are still where it expects them
(``move``), records what happened (``record``), tells everyone (``state_changed``) and then lets
``end_if_over`` decide, on the locked call, whether that was the end of it. ``invite_users``
holds the invite rules (busy, call full, already in the call) that invite and add share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User

from .. import sql
from ..errors import CallError
from ..events import Outbox
from ..models import (
    ACTIVE_STATES,
    BUSY_REASON,
    REINVITABLE_STATES,
    RINGING_STATES,
    Call,
    CallEvent,
    CallState,
    EndReason,
    Participant,
    ParticipantState,
    Role,
)
from ..selectors import Availability, active_users_named, availability
from .locking import lock_users, read_participants
from .statements import insert_events, move_participant, update_call

Kind = CallEvent.Kind


def refuse_if_ended(call: Call) -> None:
    if call.is_ended:
        raise CallError("invalid_state", "This call has ended.")


def move(p: Participant, allowed: tuple[str, ...], now: datetime, **changes: Any) -> bool:
    """Conditional update of one participant; True if this caller won the transition."""
    changes.setdefault("updated_at", now)
    won = move_participant(p.pk, allowed, changes)
    if won:
        for name, value in changes.items():
            setattr(p, name, value)
    return won


def event(call: Call, kind: str, actor: Any = None, subject: Any = None, **data: Any) -> CallEvent:
    """A CallEvent not saved yet, for writers that insert several at once (``insert_events``)."""
    # By ids: setting the related objects costs Django a router check each (the timer worker
    # makes thousands a second), and the insert reads only the ids.
    return CallEvent(
        call_id=call.pk,
        kind=kind,
        actor_id=None if actor is None else actor.pk,
        subject_id=None if subject is None else subject.pk,
        data=data,
    )


def record(call: Call, kind: str, actor: Any = None, subject: Any = None, **data: Any) -> None:
    event(call, kind, actor, subject, **data).save()


def state_changed(box: Outbox, p: Participant, device_id: str | None = None) -> None:
    box.to_everyone(
        "call.user_state_changed",
        user=p.user.get_username(),
        state=p.state,
        reason=p.reason,
        extended_data=p.extended_data,
        device_id=device_id or None,
    )


def send_and_snapshot(box: Outbox) -> dict[str, Any]:
    """End of a transition: queue the events for after commit, answer with the call as it is."""
    box.send_on_commit()
    return box.snapshot()


def resolve_users(names: list[str]) -> tuple[list[User], list[dict[str, str]]]:
    """The active users named, in the order given, and a ``not_found`` error for each other
    name; a validation error if none of them exists (there would be nobody to invite)."""
    found = {u.get_username(): u for u in active_users_named(names)}
    users = [found[n] for n in names if n in found]
    errors = [{"user": n, "reason": "not_found"} for n in names if n not in found]
    if not users:
        raise CallError(
            "validation_error",
            "None of the invitees exists.",
            {"invitees": [f"Unknown user: {e['user']}" for e in errors]},
        )
    return users, errors


@dataclass
class Change:
    """One transition under way on a locked call: who makes it (None: the server or a timer),
    when, the extended data it carries, the device it came from, and the Outbox its messages go
    to. The end rules take it whole instead of the same five arguments from every transition."""

    call: Call
    box: Outbox
    now: datetime
    operator: User | None = None
    extended_data: str = ""
    device_id: str = ""

    @property
    def operator_name(self) -> str | None:
        return self.operator.get_username() if self.operator else None


def invite_users(
    change: Change,
    *,
    users: list[User],
    existing: dict[int, Participant],
    errors: list[dict[str, str]],
    seen: Availability | None = None,
    added: list[Participant] | None = None,
    events: list[CallEvent] | None = None,
) -> None:
    """Add users to a locked call: ringing, or rejected as busy at once on their behalf.

    ``seen``: who among ``users`` is busy or blocked the inviter, if the caller has locked them
    all and read it already. ``added``: participants not saved yet (the inviter of a new call),
    and ``events`` CallEvents not saved yet: they go in with the ones made here, one insert for
    each table. ``change.operator`` is the inviter, ``change.extended_data`` goes to each
    invitation.
    On return ``added`` holds every participant created, saved, in the call's order.
    """
    call, box, now, extended_data = change.call, change.box, change.now, change.extended_data
    inviter = change.operator
    assert inviter is not None, "an invitation always has its inviter"
    top = settings.CALLSITE["MAX_ACTIVE_PARTICIPANTS"]
    if seen is None:
        lock_users([u.pk for u in users])
        seen = availability(inviter.pk, [u.pk for u in users], exclude_call=call)
    refusing = seen.refusing
    added = [] if added is None else added
    events = [] if events is None else events
    ringing: list[Participant] = []  # their timers, once the insert has given them ids
    active = sum(1 for p in existing.values() if p.state in ACTIVE_STATES)
    deadline = now + timedelta(seconds=call.timeout)
    for user in users:
        name = user.get_username()
        current = existing.get(user.pk)
        if current is not None and current.state in ACTIVE_STATES:
            errors.append({"user": name, "reason": "already_in_call"})
            continue
        is_busy = user.pk in refusing
        if not is_busy and active >= top:
            errors.append({"user": name, "reason": "call_full"})
            continue
        fields: dict[str, Any] = {
            "state": ParticipantState.REJECTED if is_busy else ParticipantState.INVITING,
            "reason": BUSY_REASON if is_busy else None,
            "deadline": None if is_busy else deadline,
            "extended_data": extended_data,
            "invited_by": inviter,
            "device_id": "",
        }
        if current is None:
            p = Participant(call=call, user=user, role=Role.INVITEE, **fields)
            added.append(p)
        else:
            # A re-invite: rejected, cancelled, timeout or quit -> inviting, with a new deadline.
            p = current
            if not move(p, REINVITABLE_STATES, now, **fields):
                errors.append({"user": name, "reason": "already_in_call"})
                continue
        p.user = user
        if is_busy:
            why = {"blocked": True} if user.pk in seen.blocked else {}
            events.append(
                event(call, Kind.BUSY, subject=user, invited_by=inviter.get_username(), **why)
            )
        else:
            active += 1
            events.append(
                event(
                    call,
                    Kind.INVITED,
                    actor=inviter,
                    subject=user,
                    deadline=deadline.isoformat(),
                    extended_data=extended_data,
                )
            )
            box.to_user(
                user.pk,
                "call.invitation_received",
                inviter=inviter.get_username(),
                extended_data=extended_data,
                deadline=deadline.isoformat(),
            )
            ringing.append(p)
        state_changed(box, p)
    sql.insert([p for p in added if p.pk is None])
    insert_events(events)
    for p in ringing:
        box.schedule_participant(p.pk, deadline)
        box.ring(p, deadline)


def end_call(
    change: Change,
    reason: str,
    *,
    participants: list[Participant] | None = None,
    events: list[CallEvent] | None = None,
) -> None:
    """End a locked, live call: whoever still rings is cancelled; the call never changes again.

    ``events``: CallEvents the caller made and has not saved yet; they go in with end_call's
    own, in one insert.

    ``participants``: every participant of the call with its user and invited_by, as they stand
    now (read after the last change), if the caller holds them; else they are read here. Read
    once, they also give the Outbox its snapshot, so the call's rows are not read again.
    """
    call, box, now, operator = change.call, change.box, change.now, change.operator
    if participants is None:
        participants = read_participants(call)
    pending = list(events or [])
    up_to_date = True
    for p in [p for p in participants if p.state in RINGING_STATES]:
        if move(p, RINGING_STATES, now, state=ParticipantState.CANCELLED, deadline=None):
            pending.append(
                event(call, Kind.CANCELLED, actor=operator, subject=p.user, because="call_ended")
            )
            # The inviter leaving a call that still rings is a cancel; any other end, an end.
            box.ring_stopped(p, "cancelled" if reason == EndReason.CANCELLED else "ended")
            box.to_user(
                p.user_id,
                "call.invitation_cancelled",
                operator=change.operator_name,
                extended_data=change.extended_data,
            )
            state_changed(box, p)
        else:
            up_to_date = False  # someone else moved it: the snapshot reads the rows afresh
    pending.append(
        event(call, Kind.ENDED, actor=operator, reason=reason, extended_data=change.extended_data)
    )
    # Last, so that the call's end and the whole timeline go in one statement (statements.py).
    # The invitees still ringing were cancelled first: within the transaction the order is
    # unseen, and the call lock keeps every other writer out until the commit.
    update_call(
        call,
        pending,
        state=CallState.ENDED,
        end_reason=reason,
        ended_at=now,
        inviter_offline_deadline=None,
    )
    call.state, call.end_reason, call.ended_at = CallState.ENDED, reason, now
    call.inviter_offline_deadline = None
    box.to_everyone(
        "call.ended",
        operator=change.operator_name,
        reason=reason,
        extended_data=change.extended_data,
    )
    if up_to_date:
        box.snapshot_from(participants)


def end_if_over(
    change: Change,
    *,
    cancelling: bool = False,
    participants: list[Participant] | None = None,
    events: list[CallEvent] | None = None,
) -> None:
    """Apply API.md's end rules to a locked call after a transition: its last change.

    ``cancelling`` says the transition was the inviter withdrawing invitations: a ringing call
    whose last pending invitees were withdrawn ends ``cancelled``; one whose last invitee
    rejected or timed out ends ``unanswered`` (or ``cancelled`` if every invitee was cancelled).
    ``participants``: as for ``end_call``, if the caller already holds them after the change.
    Whether or not the call ends, they give the Outbox its snapshot, so callers change no
    participant after this. ``events``: as for ``end_call``, saved here whatever happens.
    """
    call = change.call
    if call.is_ended:
        insert_events(events or [])
        return
    if participants is None:
        participants = read_participants(call)
    rows = [(p.role, p.state) for p in participants]
    reason = end_reason_for(call, rows, cancelling=cancelling)
    if reason is not None:
        end_call(change, reason, participants=participants, events=events)
    else:
        insert_events(events or [])
        change.box.snapshot_from(participants)


def end_reason_for(
    call: Call, rows: list[tuple[str, str]], *, cancelling: bool = False
) -> str | None:
    """API.md's end rules for a live call whose (role, state) pairs are ``rows``: the reason
    it ends with now, or None if it goes on. See ``end_if_over`` for ``cancelling``."""
    # Every ringing participant counts, the inviter too: once they quit an ongoing call,
    # another participant may invite them back.
    pending = sum(1 for _, s in rows if s in RINGING_STATES)
    accepted = sum(1 for _, s in rows if s == ParticipantState.ACCEPTED)
    if call.state == CallState.RINGING:
        if pending == 0:
            all_cancelled = all(
                s == ParticipantState.CANCELLED for r, s in rows if r == Role.INVITEE
            )
            return EndReason.CANCELLED if cancelling or all_cancelled else EndReason.UNANSWERED
    elif accepted == 0 or (accepted < 2 and pending == 0):
        return EndReason.ALL_LEFT
    return None


def after_quit(change: Change, me: Participant) -> None:
    """Tell everyone someone left, and end the call if that was the end of it."""
    state_changed(change.box, me, change.device_id)
    if change.call.state == CallState.RINGING and me.role == Role.INVITER:
        end_call(change, EndReason.CANCELLED)
    else:
        end_if_over(change)
