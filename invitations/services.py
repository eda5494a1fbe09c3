"""The call state machine: every write to a call goes through one of these functions.

Each function
1. runs in one transaction, locks the call row first (so the decision whether the call ends is
   taken on a consistent view) and moves participants with conditional updates
   (``filter(state__in=allowed).update(...)``), so racing requests, timers and processes produce
   exactly one winner;
2. appends CallEvent rows, the timeline the admin shows;
3. publishes events with ``transaction.on_commit`` through an Outbox, never before the commit.

API.md is the contract these implement; the comments note where it left a choice to us.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import validation
from .errors import CallError
from .events import Outbox
from .models import (
    ACTIVE_STATES,
    LIVE_CALL_STATES,
    REINVITABLE_STATES,
    RINGING_STATES,
    Call,
    CallEvent,
    CallState,
    EndReason,
    Participant,
    PState,
    Role,
    UserLock,
)
from .presence import user_is_online

User = get_user_model()
Kind = CallEvent.Kind
BUSY = "busy"


@dataclass
class InviteResult:
    call: dict[str, Any]  # the Call snapshot after the change
    errors: list[dict[str, str]]


# --- helpers ----------------------------------------------------------------------------------


def _now() -> datetime:
    return timezone.now()


def _parse_call_id(call_id: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(call_id))
    except (TypeError, ValueError, AttributeError):
        raise CallError("not_found", "No such call.") from None


def _lock_call(call_id: Any, user: AbstractBaseUser) -> tuple[Call, Participant]:
    """Lock the call row and return it with the user's participation (404 if they have none)."""
    pk = _parse_call_id(call_id)
    call = Call.objects.select_for_update().select_related("inviter").filter(pk=pk).first()
    me = None
    if call is not None:
        me = Participant.objects.filter(call=call, user=user).first()
    if call is None or me is None:
        # Existence of calls you are not part of is not leaked.
        raise CallError("not_found", "No such call.")
    return call, me


def _refuse_if_ended(call: Call) -> None:
    if call.is_ended:
        raise CallError("invalid_state", "This call has ended.")


def _lock_users(user_ids: list[int]) -> None:
    """Take the per-user lock rows in a fixed order, so that concurrent invites never deadlock."""
    ids = sorted(set(user_ids))
    UserLock.objects.bulk_create([UserLock(user_id=i) for i in ids], ignore_conflicts=True)
    list(UserLock.objects.select_for_update().filter(user_id__in=ids).order_by("user_id"))


def busy_user_ids(user_ids: list[int], *, exclude_call: Call | None = None) -> set[int]:
    """Users who ring for, or talk in, a call that has not ended."""
    qs = Participant.objects.filter(
        user_id__in=user_ids, state__in=ACTIVE_STATES, call__state__in=LIVE_CALL_STATES
    )
    if exclude_call is not None:
        qs = qs.exclude(call=exclude_call)
    return set(qs.values_list("user_id", flat=True))


def _resolve_users(names: list[str]) -> tuple[list[AbstractBaseUser], list[dict[str, str]]]:
    found = {u.get_username(): u for u in User.objects.filter(username__in=names, is_active=True)}
    users = [found[n] for n in names if n in found]
    errors = [{"user": n, "reason": "not_found"} for n in names if n not in found]
    return users, errors


def _move(p: Participant, allowed: tuple[str, ...], now: datetime, **changes: Any) -> bool:
    """Conditional update of one participant; True if this caller won the transition."""
    changes.setdefault("updated_at", now)
    won = Participant.objects.filter(pk=p.pk, state__in=allowed).update(**changes) == 1
    if won:
        for name, value in changes.items():
            setattr(p, name, value)
    return won


def _record(call: Call, kind: str, actor: Any = None, subject: Any = None, **data: Any) -> None:
    CallEvent.objects.create(call=call, kind=kind, actor=actor, subject=subject, data=data)


def _state_changed(box: Outbox, p: Participant, device_id: str | None = None) -> None:
    box.to_everyone(
        "call.user_state_changed",
        user=p.user.get_username(),
        state=p.state,
        reason=p.reason,
        extended_data=p.extended_data,
        device_id=device_id or None,
    )


def _invite_users(
    *,
    call: Call,
    inviter: AbstractBaseUser,
    users: list[AbstractBaseUser],
    existing: dict[int, Participant],
    extended_data: str,
    now: datetime,
    box: Outbox,
    errors: list[dict[str, str]],
) -> None:
    """Add users to a locked call: ringing, or rejected as busy at once on their behalf."""
    top = settings.CALLSITE["MAX_ACTIVE_PARTICIPANTS"]
    _lock_users([u.pk for u in users])
    active = sum(1 for p in existing.values() if p.state in ACTIVE_STATES)
    busy = busy_user_ids([u.pk for u in users], exclude_call=call)
    deadline = now + timedelta(seconds=call.timeout)
    for user in users:
        name = user.get_username()
        current = existing.get(user.pk)
        if current is not None and current.state in ACTIVE_STATES:
            errors.append({"user": name, "reason": "already_in_call"})
            continue
        is_busy = user.pk in busy
        if not is_busy and active >= top:
            errors.append({"user": name, "reason": "call_full"})
            continue
        fields: dict[str, Any] = {
            "state": PState.REJECTED if is_busy else PState.INVITING,
            "reason": BUSY if is_busy else None,
            "deadline": None if is_busy else deadline,
            "extended_data": extended_data,
            "invited_by": inviter,
            "device_id": "",
        }
        if current is None:
            p = Participant.objects.create(call=call, user=user, role=Role.INVITEE, **fields)
        else:
            # A re-invite: rejected, cancelled, timeout or quit -> inviting, with a new deadline.
            p = current
            if not _move(p, REINVITABLE_STATES, now, **fields):
                errors.append({"user": name, "reason": "already_in_call"})
                continue
        p.user = user
        if is_busy:
            _record(call, Kind.BUSY, subject=user, invited_by=inviter.get_username())
        else:
            active += 1
            _record(
                call,
                Kind.INVITED,
                actor=inviter,
                subject=user,
                deadline=deadline.isoformat(),
                extended_data=extended_data,
            )
            box.to_user(
                user.pk,
                "call.invitation_received",
                inviter=inviter.get_username(),
                extended_data=extended_data,
                deadline=deadline.isoformat(),
            )
            box.schedule_participant(p.pk, deadline)
        _state_changed(box, p)


def _end(
    call: Call,
    reason: str,
    *,
    operator: AbstractBaseUser | None,
    extended_data: str,
    now: datetime,
    box: Outbox,
) -> None:
    """End a locked call: whoever still rings is cancelled; the call never changes again."""
    if (
        Call.objects.filter(pk=call.pk, state__in=LIVE_CALL_STATES).update(
            state=CallState.ENDED, end_reason=reason, ended_at=now, inviter_offline_deadline=None
        )
        != 1
    ):
        return
    call.state, call.end_reason, call.ended_at = CallState.ENDED, reason, now
    for p in Participant.objects.filter(call=call, state__in=RINGING_STATES).select_related("user"):
        if _move(p, RINGING_STATES, now, state=PState.CANCELLED, deadline=None):
            _record(call, Kind.CANCELLED, actor=operator, subject=p.user, because="call_ended")
            box.to_user(
                p.user_id,
                "call.invitation_cancelled",
                operator=operator.get_username() if operator else None,
                extended_data=extended_data,
            )
            _state_changed(box, p)
    _record(call, Kind.ENDED, actor=operator, reason=reason, extended_data=extended_data)
    box.to_everyone(
        "call.ended",
        operator=operator.get_username() if operator else None,
        reason=reason,
        extended_data=extended_data,
    )


def _end_if_over(
    call: Call,
    *,
    operator: AbstractBaseUser | None,
    extended_data: str,
    now: datetime,
    box: Outbox,
    cancelling: bool = False,
    rows: list[tuple[str, str]] | None = None,
) -> None:
    """Apply API.md's end rules to a locked call after a transition.

    ``cancelling`` says the transition was the inviter withdrawing invitations: a ringing call
    whose last pending invitees were withdrawn ends ``cancelled``; one whose last invitee
    rejected or timed out ends ``unanswered`` (or ``cancelled`` if every invitee was cancelled).
    ``rows``: the call's (role, state) pairs, if the caller already read them after the change.
    """
    if call.is_ended:
        return
    if rows is None:
        rows = list(Participant.objects.filter(call=call).values_list("role", "state"))
    # Every ringing participant counts, the inviter too: once they quit an ongoing call,
    # another participant may invite them back.
    pending = sum(1 for _, s in rows if s in RINGING_STATES)
    accepted = sum(1 for _, s in rows if s == PState.ACCEPTED)
    reason = None
    if call.state == CallState.RINGING:
        if pending == 0:
            all_cancelled = all(s == PState.CANCELLED for r, s in rows if r == Role.INVITEE)
            reason = EndReason.CANCELLED if cancelling or all_cancelled else EndReason.UNANSWERED
    elif accepted == 0 or (accepted < 2 and pending == 0):
        reason = EndReason.ALL_LEFT
    if reason is not None:
        _end(call, reason, operator=operator, extended_data=extended_data, now=now, box=box)


# --- the transitions ----------------------------------------------------------------------------


def invite(
    *,
    inviter: AbstractBaseUser,
    invitees: Any,
    type: Any = None,
    timeout: Any = None,
    extended_data: Any = None,
    device_id: Any = None,
) -> InviteResult:
    """Start a call: the inviter is accepted at once, each invitee rings (or is busy)."""
    names = validation.usernames(invitees, me=inviter.get_username())
    call_type = validation.call_type(type)
    seconds = validation.timeout(timeout)
    data = validation.extended_data(extended_data)
    device = validation.device_id(device_id)
    users, errors = _resolve_users(names)
    if not users:
        raise CallError(
            "validation_error",
            "None of the invitees exists.",
            {"invitees": [f"Unknown user: {e['user']}" for e in errors]},
        )
    now = _now()
    with transaction.atomic():
        _lock_users([inviter.pk] + [u.pk for u in users])
        if busy_user_ids([inviter.pk]):
            raise CallError("busy", "You are already ringing or talking in another call.")
        call = Call.objects.create(
            inviter=inviter, type=call_type, timeout=seconds, extended_data=data
        )
        me = Participant.objects.create(
            call=call,
            user=inviter,
            role=Role.INVITER,
            state=PState.ACCEPTED,
            extended_data=data,
            device_id=device,
        )
        _record(
            call,
            Kind.CREATED,
            actor=inviter,
            type=call_type,
            timeout=seconds,
            extended_data=data,
            device_id=device,
        )
        box = Outbox(call)
        _invite_users(
            call=call,
            inviter=inviter,
            users=users,
            existing={inviter.pk: me},  # the inviter takes one of the call's active places
            extended_data=data,
            now=now,
            box=box,
            errors=errors,
        )
        _end_if_over(call, operator=None, extended_data="", now=now, box=box)
        _start_caller_offline_if_no_device(call, inviter, now, box)
        return InviteResult(call=box.flush(), errors=errors)


def add_invitees(
    *, actor: AbstractBaseUser, call_id: Any, invitees: Any = None, extended_data: Any = None
) -> InviteResult:
    """Invite more people into a call that has not ended; any accepted participant may."""
    names = validation.usernames(invitees, me=actor.get_username())
    data = validation.extended_data(extended_data)
    now = _now()
    with transaction.atomic():
        call, me = _lock_call(call_id, actor)
        _refuse_if_ended(call)
        if me.state != PState.ACCEPTED:
            raise CallError("invalid_state", "Only participants in the call can invite others.")
        users, errors = _resolve_users(names)
        if not users:
            raise CallError(
                "validation_error",
                "None of the invitees exists.",
                {"invitees": [f"Unknown user: {e['user']}" for e in errors]},
            )
        existing = {p.user_id: p for p in Participant.objects.filter(call=call)}
        box = Outbox(call)
        _invite_users(
            call=call,
            inviter=actor,
            users=users,
            existing=existing,
            extended_data=data,
            now=now,
            box=box,
            errors=errors,
        )
        _end_if_over(call, operator=None, extended_data="", now=now, box=box)
        return InviteResult(call=box.flush(), errors=errors)


def cancel(
    *, actor: AbstractBaseUser, call_id: Any, invitees: Any = None, extended_data: Any = None
) -> dict[str, Any]:
    """Withdraw ringing invitations the actor sent (all of them by default)."""
    names = None if invitees is None else validation.usernames(invitees, me=actor.get_username())
    data = validation.extended_data(extended_data)
    now = _now()
    with transaction.atomic():
        call, me = _lock_call(call_id, actor)
        _refuse_if_ended(call)
        participants = list(Participant.objects.filter(call=call).select_related("user"))
        if names is None:
            targets = [
                p for p in participants if p.invited_by_id == actor.pk and p.state in RINGING_STATES
            ]
            if not targets:
                raise CallError("invalid_state", "You have no ringing invitations to cancel.")
        else:
            by_name = {p.user.get_username(): p for p in participants}
            unknown = [n for n in names if n not in by_name]
            if unknown:
                raise CallError(
                    "validation_error",
                    "Some of these users were never invited to this call.",
                    {"invitees": [f"Not invited: {n}" for n in unknown]},
                )
            targets = [by_name[n] for n in names]
            if any(p.invited_by_id != actor.pk for p in targets):
                raise CallError("permission_denied", "You can only cancel invitations you sent.")
            if any(p.state not in RINGING_STATES for p in targets):
                raise CallError("invalid_state", "Only ringing invitations can be cancelled.")
        box = Outbox(call)
        for p in targets:
            if not _move(
                p, RINGING_STATES, now, state=PState.CANCELLED, deadline=None, extended_data=data
            ):
                raise CallError("invalid_state", "Only ringing invitations can be cancelled.")
            _record(call, Kind.CANCELLED, actor=actor, subject=p.user, extended_data=data)
            box.to_user(
                p.user_id,
                "call.invitation_cancelled",
                operator=actor.get_username(),
                extended_data=data,
            )
            _state_changed(box, p)
        _end_if_over(call, operator=actor, extended_data=data, now=now, box=box, cancelling=True)
        return box.flush()


def _answer(actor: AbstractBaseUser, call_id: Any, action: str) -> tuple[Call, Participant]:
    """Lock the call for an invitee's answer (accept, reject, ack): role and liveness checks."""
    call, me = _lock_call(call_id, actor)
    # The inviter never answers their own invitation; but an inviter who quit an ongoing call
    # and was invited back by someone else answers that invitation like anyone.
    if me.role == Role.INVITER and me.invited_by_id is None:
        raise CallError("permission_denied", f"The inviter cannot {action} their own call.")
    _refuse_if_ended(call)
    return call, me


def _refuse_late_answer(me: Participant, now: datetime) -> None:
    """A ringing invitee past their deadline has timed out, even if the timer is still late."""
    if me.state in RINGING_STATES and me.deadline is not None and me.deadline <= now:
        raise CallError("invalid_state", "This invitation has timed out.")


def _answer_ringing(
    actor: AbstractBaseUser, call_id: Any, action: str, now: datetime, **changes: Any
) -> tuple[Call, Participant]:
    """Inside the transaction: move the actor's ringing invitation (accept or reject)."""
    call, me = _answer(actor, call_id, action)
    _refuse_late_answer(me, now)
    if not _move(me, RINGING_STATES, now, deadline=None, **changes):
        raise CallError("invalid_state", f"You cannot {action} an invitation that is {me.state}.")
    me.user = actor
    return call, me


def _expire_if_late(call_id: Any, actor: AbstractBaseUser) -> None:
    p = Participant.objects.filter(call_id=_parse_call_id(call_id), user=actor).first()
    if p is not None and p.state in RINGING_STATES and p.deadline and p.deadline <= _now():
        expire(participant_id=p.pk)


def accept(
    *, actor: AbstractBaseUser, call_id: Any, extended_data: Any = None, device_id: Any = None
) -> dict[str, Any]:
    data = validation.extended_data(extended_data)
    device = validation.device_id(device_id)
    _expire_if_late(call_id, actor)
    now = _now()
    with transaction.atomic():
        call, me = _answer_ringing(
            actor,
            call_id,
            "accept",
            now,
            state=PState.ACCEPTED,
            extended_data=data,
            device_id=device,
        )
        if call.state == CallState.RINGING:
            Call.objects.filter(pk=call.pk).update(state=CallState.ONGOING)
            call.state = CallState.ONGOING
        _record(
            call, Kind.ACCEPTED, actor=actor, subject=actor, extended_data=data, device_id=device
        )
        box = Outbox(call)
        _state_changed(box, me, device)
        return box.flush()


def reject(
    *,
    actor: AbstractBaseUser,
    call_id: Any,
    reason: Any = None,
    extended_data: Any = None,
    device_id: Any = None,
) -> dict[str, Any]:
    why = validation.reason(reason)
    data = validation.extended_data(extended_data)
    device = validation.device_id(device_id)
    _expire_if_late(call_id, actor)
    now = _now()
    with transaction.atomic():
        call, me = _answer_ringing(
            actor, call_id, "reject", now, state=PState.REJECTED, reason=why, extended_data=data
        )
        _record(
            call,
            Kind.REJECTED,
            actor=actor,
            subject=actor,
            reason=why,
            extended_data=data,
            device_id=device,
        )
        box = Outbox(call)
        _state_changed(box, me, device)
        _end_if_over(call, operator=actor, extended_data=data, now=now, box=box)
        return box.flush()


def acknowledge(*, actor: AbstractBaseUser, call_id: Any, device_id: Any = None) -> dict[str, Any]:
    """A device shows the invitation: inviting -> received. A no-op when already received."""
    device = validation.device_id(device_id)
    now = _now()
    with transaction.atomic():
        call, me = _answer(actor, call_id, "acknowledge")
        box = Outbox(call)
        if me.state == PState.RECEIVED:
            return box.flush()
        _refuse_late_answer(me, now)
        if not _move(me, (PState.INVITING,), now, state=PState.RECEIVED):
            raise CallError(
                "invalid_state", f"You cannot acknowledge an invitation that is {me.state}."
            )
        _record(call, Kind.RECEIVED, actor=actor, subject=actor, device_id=device)
        me.user = actor
        _state_changed(box, me, device)
        return box.flush()


def quit(
    *, actor: AbstractBaseUser, call_id: Any, extended_data: Any = None, device_id: Any = None
) -> dict[str, Any]:
    """Leave a call. The inviter quitting a call that still rings cancels it for everyone."""
    data = validation.extended_data(extended_data)
    device = validation.device_id(device_id)
    now = _now()
    with transaction.atomic():
        call, me = _lock_call(call_id, actor)
        _refuse_if_ended(call)
        if not _move(me, (PState.ACCEPTED,), now, state=PState.QUIT, extended_data=data):
            raise CallError("invalid_state", "Only participants in the call can quit it.")
        _record(call, Kind.QUIT, actor=actor, subject=actor, extended_data=data, device_id=device)
        box = Outbox(call)
        me.user = actor
        _after_quit(call, me, operator=actor, extended_data=data, device=device, now=now, box=box)
        return box.flush()


def _after_quit(
    call: Call,
    me: Participant,
    *,
    operator: AbstractBaseUser | None,
    extended_data: str,
    device: str,
    now: datetime,
    box: Outbox,
) -> None:
    """Tell everyone someone left, and end the call if that was the end of it."""
    _state_changed(box, me, device)
    if call.state == CallState.RINGING and me.role == Role.INVITER:
        _end(
            call,
            EndReason.CANCELLED,
            operator=operator,
            extended_data=extended_data,
            now=now,
            box=box,
        )
    else:
        _end_if_over(call, operator=operator, extended_data=extended_data, now=now, box=box)


def end(*, actor: AbstractBaseUser, call_id: Any, extended_data: Any = None) -> dict[str, Any]:
    """End the call for everyone; any accepted participant may."""
    data = validation.extended_data(extended_data)
    now = _now()
    with transaction.atomic():
        call, me = _lock_call(call_id, actor)
        _refuse_if_ended(call)
        if me.state != PState.ACCEPTED:
            raise CallError("invalid_state", "Only participants in the call can end it.")
        box = Outbox(call)
        _end(call, EndReason.ENDED, operator=actor, extended_data=data, now=now, box=box)
        return box.flush()


def force_end(*, call_id: Any, operator: AbstractBaseUser | None = None) -> bool:
    """End a call from the admin. Returns False if it had already ended."""
    now = _now()
    with transaction.atomic():
        call = Call.objects.select_for_update().filter(pk=_parse_call_id(call_id)).first()
        if call is None or call.is_ended:
            return False
        box = Outbox(call)
        # The operator may be a staff user who is no participant; the reason stays `ended`.
        _end(call, EndReason.ENDED, operator=operator, extended_data="", now=now, box=box)
        box.flush()
        return True


def expire(*, participant_id: int) -> bool:
    """Time out a ringing invitee whose deadline has passed. Idempotent: False if nothing to do."""
    # Checked before any transaction: on SQLite a transaction takes the write lock at once.
    due = Participant.objects.filter(
        pk=participant_id, state__in=RINGING_STATES, deadline__lte=_now()
    ).exists()
    return due and bool(expire_many(participant_ids=[participant_id]))


def expire_many(*, participant_ids: list[int]) -> list[int]:
    """Time out many ringing invitees whose deadline passed; returns the ids this call expired.

    The timer worker's batch path: one transaction for the whole batch instead of one per
    invitee, because at thousands of deadlines per second the per-transaction cost (BEGIN,
    locks, COMMIT and its fsync, one event publication) is what made timeouts run seconds late.
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
    now = _now()
    try:
        with transaction.atomic():
            return _expire_batch(ids, now)
    except _BatchRacedError:
        if len(ids) == 1:
            return []  # someone else moved it first
        return [pk for pk in ids if expire(participant_id=pk)]


class _BatchRacedError(Exception):
    """The batch's conditional update lost a row: undo the batch, fall back to one by one."""


def _expire_batch(ids: list[int], now: datetime) -> list[int]:
    call_ids = set(
        Participant.objects.filter(pk__in=ids, state__in=RINGING_STATES, deadline__lte=now)
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
        Participant.objects.select_related("user").filter(
            pk__in=ids, call_id__in=calls, state__in=RINGING_STATES, deadline__lte=now
        )
    )
    if not due:
        return []
    won = Participant.objects.filter(
        pk__in=[p.pk for p in due], state__in=RINGING_STATES, deadline__lte=now
    ).update(state=PState.TIMEOUT, deadline=None, updated_at=now)
    if won != len(due):
        raise _BatchRacedError()
    CallEvent.objects.bulk_create(
        [CallEvent(call=calls[p.call_id], kind=Kind.TIMEOUT, subject=p.user, data={}) for p in due]
    )
    by_call: dict[Any, list[Participant]] = {}
    for p in due:
        p.state, p.deadline, p.updated_at = PState.TIMEOUT, None, now
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
            _state_changed(box, p)
        _end_if_over(call, operator=None, extended_data="", now=now, box=box, rows=states[call_id])
        box.flush()
    return [p.pk for p in due]


# --- caller offline (the presence side lives with the WebSocket consumer) ----------------------


def _mark_inviter_offline(*, user: AbstractBaseUser, grace: float) -> None:
    """The user's last device went away: calls they ring out end unless they return in time."""
    now = _now()
    with transaction.atomic():
        calls = list(
            Call.objects.select_for_update()
            .filter(inviter=user, state=CallState.RINGING)
            .filter(Q(inviter_offline_deadline__isnull=True))
        )
        for call in calls:
            # Counted from the later of the call's creation and the disconnect.
            deadline = max(now, call.created_at) + timedelta(seconds=grace)
            Call.objects.filter(pk=call.pk).update(inviter_offline_deadline=deadline)
            call.inviter_offline_deadline = deadline
            box = Outbox(call)
            box.schedule_caller_offline(deadline)
            box.flush()


def mark_user_offline(*, user: AbstractBaseUser, grace: float) -> None:
    """The user's last device went away: unless one comes back within ``grace`` seconds, a call
    they ring out ends ``caller_offline`` and they leave the calls they talk in."""
    _mark_inviter_offline(user=user, grace=grace)
    _mark_participant_offline(user=user, grace=grace)


def mark_user_online(*, user: AbstractBaseUser) -> None:
    """A device of the user connected: both offline countdowns stop."""
    _mark_inviter_online(user=user)
    _mark_participant_online(user=user)


def _start_caller_offline_if_no_device(
    call: Call, inviter: AbstractBaseUser, now: datetime, box: Outbox
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


def _mark_participant_offline(*, user: AbstractBaseUser, grace: float) -> None:
    """The user's last device went away: they leave the calls they talk in unless they return.

    A reload or a network change reconnects within seconds and keeps the call; a closed tab or
    a dead phone does not, and without this the user would stay accepted, and busy, for ever.
    """
    now = _now()
    deadline = now + timedelta(seconds=grace)
    mine = Participant.objects.filter(
        user=user,
        state=PState.ACCEPTED,
        call__state__in=LIVE_CALL_STATES,
        offline_deadline__isnull=True,
    )
    for p in mine.select_related("call"):
        Participant.objects.filter(pk=p.pk).update(offline_deadline=deadline)
        box = Outbox(p.call)
        box.schedule_participant_offline(p.pk, deadline)
        box.flush()


def _mark_participant_online(*, user: AbstractBaseUser) -> None:
    Participant.objects.filter(user=user, offline_deadline__isnull=False).update(
        offline_deadline=None
    )


def expire_participant_offline(*, participant_id: int) -> bool:
    """Quit, on their behalf, a participant whose devices stayed away for the whole grace.

    An inviter whose call still rings is the caller-offline rule instead: the call ends
    ``caller_offline``, whichever of the two timers fires first.
    """
    now = _now()
    call_id = (
        Participant.objects.filter(
            pk=participant_id, state=PState.ACCEPTED, offline_deadline__lte=now
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
        changes: dict[str, Any] = {"offline_deadline": None, "updated_at": now}
        if not caller_offline:
            changes["state"] = PState.QUIT
        won = Participant.objects.filter(
            pk=participant_id, state=PState.ACCEPTED, offline_deadline__lte=now
        ).update(**changes)
        if not won:
            return False
        box = Outbox(call)
        if caller_offline:
            _end(call, EndReason.CALLER_OFFLINE, operator=None, extended_data="", now=now, box=box)
        else:
            me.state, me.offline_deadline, me.updated_at = PState.QUIT, None, now
            _record(call, Kind.QUIT, subject=me.user, because="offline")
            _after_quit(call, me, operator=None, extended_data="", device="", now=now, box=box)
        box.flush()
        return True


def _mark_inviter_online(*, user: AbstractBaseUser) -> None:
    Call.objects.filter(
        inviter=user, state__in=LIVE_CALL_STATES, inviter_offline_deadline__isnull=False
    ).update(inviter_offline_deadline=None)


def expire_caller_offline(*, call_id: Any) -> bool:
    """End a ringing call whose inviter stayed offline for the whole grace period."""
    now = _now()
    with transaction.atomic():
        call = (
            Call.objects.select_for_update()
            .filter(
                pk=_parse_call_id(call_id),
                state=CallState.RINGING,
                inviter_offline_deadline__lte=now,
            )
            .first()
        )
        if call is None:
            return False
        box = Outbox(call)
        _end(call, EndReason.CALLER_OFFLINE, operator=None, extended_data="", now=now, box=box)
        box.flush()
        return True


def pending_deadlines() -> list[tuple[float, str, Any]]:
    """Every deadline the timer worker must watch: (unix time, kind, id)."""
    rows: list[tuple[float, str, Any]] = [
        (d.timestamp(), "invitation", pk)
        for pk, d in Participant.objects.filter(
            deadline__isnull=False, state__in=RINGING_STATES
        ).values_list("pk", "deadline")
    ]
    rows += [
        (d.timestamp(), "participant_offline", pk)
        for pk, d in Participant.objects.filter(
            state=PState.ACCEPTED,
            offline_deadline__isnull=False,
            call__state__in=LIVE_CALL_STATES,
        ).values_list("pk", "offline_deadline")
    ]
    rows += [
        (d.timestamp(), "caller_offline", str(pk))
        for pk, d in Call.objects.filter(
            state=CallState.RINGING, inviter_offline_deadline__isnull=False
        ).values_list("pk", "inviter_offline_deadline")
    ]
    return rows
