"""The transitions of a call: every write a user (or the admin) asks for.

invite, add_invitees, cancel, quit_call, end and force_end (an invitee's answers: answers.py). Each
1. runs in one transaction, locks the call row first (so the decision whether the call ends is
   taken on a consistent view) and moves participants with conditional updates
   (``filter(state__in=allowed).update(...)``), so racing requests, timers and processes produce
   exactly one winner; the time it stamps (``updated_at``, which clients order snapshots by)
   is read after the lock, so the versions of one call's snapshots follow the order of its
   changes and the newest snapshot a client has seen holds every change before it;
2. appends CallEvent rows, the timeline the admin shows;
3. publishes events with ``transaction.on_commit`` through an Outbox, never before the commit.

API.md is the contract these implement; the comments note where it left a choice to us.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from .. import sql, validation
from ..errors import CallError
from ..events import Outbox
from ..models import (
    RINGING_STATES,
    Call,
    CallEvent,
    CallType,
    EndReason,
    Participant,
    ParticipantState,
    Role,
)
from ..selectors import availability
from .devices import caller_offline_deadline
from .locking import lock_call, lock_call_with_everyone, lock_users
from .rules import (
    Change,
    Kind,
    after_quit,
    end_call,
    end_if_over,
    event,
    invite_users,
    move,
    record,
    refuse_if_ended,
    resolve_users,
    send_and_snapshot,
    state_changed,
)


@dataclass
class InviteResult:
    call: dict[str, Any]  # the Call snapshot after the change
    errors: list[dict[str, str]]


def invite(
    *,
    inviter: User,
    invitees: list[str],
    type: CallType = CallType.VIDEO,
    timeout: int | None = None,
    extended_data: str = "",
    device_id: str = "",
) -> InviteResult:
    """Start a call: the inviter is accepted at once, each invitee rings (or is busy).

    ``timeout``: seconds each invitee rings for; None means the configured default.
    """
    if timeout is None:
        timeout = validation.default_timeout()
    users, errors = resolve_users(invitees)
    now = timezone.now()
    with transaction.atomic():
        everyone = [inviter.pk] + [u.pk for u in users]
        lock_users(everyone)
        # One read for the inviter and the invitees (the new call holds nobody yet): who is
        # busy or blocked the inviter, and whether the inviter holds a connection.
        seen = availability(inviter.pk, everyone, caller_presence=True)
        if inviter.pk in seen.refusing:  # nobody can block themselves: the inviter is busy
            raise CallError("busy", "You are already ringing or talking in another call.")
        # Set with the call's insert rather than updated after it; cleared if the call ends.
        offline_deadline = caller_offline_deadline(now, connected=seen.caller_online)
        call = Call(
            inviter=inviter,
            type=type,
            timeout=timeout,
            extended_data=extended_data,
            inviter_offline_deadline=offline_deadline,
        )
        sql.insert([call])
        # Inserted by invite_users with the invitees' rows and events, one insert each.
        me = Participant(
            call=call,
            user=inviter,
            role=Role.INVITER,
            state=ParticipantState.ACCEPTED,
            extended_data=extended_data,
            device_id=device_id,
        )
        created = event(
            call,
            Kind.CREATED,
            actor=inviter,
            type=type,
            timeout=timeout,
            extended_data=extended_data,
            device_id=device_id,
        )
        box = Outbox(call)
        added = [me]  # the new call's participants, in its order, once invite_users is done
        invite_users(
            Change(call, box, now, operator=inviter, extended_data=extended_data),
            users=users,
            existing={inviter.pk: me},  # the inviter takes one of the call's active places
            errors=errors,
            seen=seen,
            added=added,
            events=[created],
        )
        # If nobody rings (all busy or refused), the server ends it: no operator, no data.
        end_if_over(Change(call, box, now), participants=added)
        if offline_deadline is not None and not call.is_ended:
            box.schedule_caller_offline(offline_deadline)
        return InviteResult(call=send_and_snapshot(box), errors=errors)


def add_invitees(
    *, actor: User, call_id: UUID, invitees: list[str], extended_data: str = ""
) -> InviteResult:
    """Invite more people into a call that has not ended; any accepted participant may."""
    with transaction.atomic():
        call, me, participants = lock_call_with_everyone(call_id, actor)
        now = timezone.now()
        refuse_if_ended(call)
        if me.state != ParticipantState.ACCEPTED:
            raise CallError("invalid_state", "Only participants in the call can invite others.")
        users, errors = resolve_users(invitees)
        existing = {p.user_id: p for p in participants}
        box = Outbox(call)
        invite_users(
            Change(call, box, now, operator=actor, extended_data=extended_data),
            users=users,
            existing=existing,
            errors=errors,
        )
        end_if_over(Change(call, box, now))
        return InviteResult(call=send_and_snapshot(box), errors=errors)


def cancel(
    *, actor: User, call_id: UUID, invitees: list[str] | None = None, extended_data: str = ""
) -> dict[str, Any]:
    """Withdraw ringing invitations the actor sent (``invitees=None``: all of them)."""
    with transaction.atomic():
        call, _, participants = lock_call_with_everyone(call_id, actor)
        now = timezone.now()
        refuse_if_ended(call)
        if invitees is None:
            targets = [
                p for p in participants if p.invited_by_id == actor.pk and p.state in RINGING_STATES
            ]
            if not targets:
                raise CallError("invalid_state", "You have no ringing invitations to cancel.")
        else:
            by_name = {p.user.get_username(): p for p in participants}
            unknown = [n for n in invitees if n not in by_name]
            if unknown:
                raise CallError(
                    "validation_error",
                    "Some of these users were never invited to this call.",
                    {"invitees": [f"Not invited: {n}" for n in unknown]},
                )
            targets = [by_name[n] for n in invitees]
            if any(p.invited_by_id != actor.pk for p in targets):
                raise CallError("permission_denied", "You can only cancel invitations you sent.")
            if any(p.state not in RINGING_STATES for p in targets):
                raise CallError("invalid_state", "Only ringing invitations can be cancelled.")
        box = Outbox(call)
        cancelled: list[CallEvent] = []  # saved by end_if_over, with the end's own events
        for p in targets:
            if not move(
                p,
                RINGING_STATES,
                now,
                state=ParticipantState.CANCELLED,
                deadline=None,
                extended_data=extended_data,
            ):
                raise CallError("invalid_state", "Only ringing invitations can be cancelled.")
            cancelled.append(
                event(
                    call, Kind.CANCELLED, actor=actor, subject=p.user, extended_data=extended_data
                )
            )
            box.to_user(
                p.user_id,
                "call.invitation_cancelled",
                operator=actor.get_username(),
                extended_data=extended_data,
            )
            box.ring_stopped(p, "cancelled")
            state_changed(box, p)
        end_if_over(
            Change(call, box, now, operator=actor, extended_data=extended_data),
            cancelling=True,
            participants=participants,  # moved in memory, as they now stand
            events=cancelled,
        )
        return send_and_snapshot(box)


def quit_call(
    *, actor: User, call_id: UUID, extended_data: str = "", device_id: str = ""
) -> dict[str, Any]:
    """Leave a call. The inviter quitting a call that still rings cancels it for everyone."""
    with transaction.atomic():
        call, me = lock_call(call_id, actor)
        now = timezone.now()
        refuse_if_ended(call)
        if not move(
            me,
            (ParticipantState.ACCEPTED,),
            now,
            state=ParticipantState.QUIT,
            extended_data=extended_data,
        ):
            raise CallError("invalid_state", "Only participants in the call can quit it.")
        record(
            call,
            Kind.QUIT,
            actor=actor,
            subject=actor,
            extended_data=extended_data,
            device_id=device_id,
        )
        me.user = actor
        change = Change(call, Outbox(call), now, actor, extended_data, device_id=device_id)
        after_quit(change, me)
        return send_and_snapshot(change.box)


def end(*, actor: User, call_id: UUID, extended_data: str = "") -> dict[str, Any]:
    """End the call for everyone; any accepted participant may."""
    with transaction.atomic():
        call, me, participants = lock_call_with_everyone(call_id, actor)
        now = timezone.now()
        refuse_if_ended(call)
        if me.state != ParticipantState.ACCEPTED:
            raise CallError("invalid_state", "Only participants in the call can end it.")
        change = Change(call, Outbox(call), now, operator=actor, extended_data=extended_data)
        end_call(change, EndReason.ENDED, participants=participants)
        return send_and_snapshot(change.box)


def force_end(*, call_id: UUID, operator: User | None = None) -> bool:
    """End a call from the admin. Returns False if it had already ended."""
    with transaction.atomic():
        call = Call.objects.select_for_update().filter(pk=call_id).first()
        now = timezone.now()
        if call is None or call.is_ended:
            return False
        box = Outbox(call)
        # The operator may be a staff user who is no participant; the reason stays `ended`.
        end_call(Change(call, box, now, operator=operator), EndReason.ENDED)
        box.send_on_commit()
        return True
