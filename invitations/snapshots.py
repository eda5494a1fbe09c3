"""The Call, Participant and User shapes of API.md, as plain dicts.

REST responses and WebSocket events both use these, so a client sees the same shape everywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import User

from .models import Call, Participant


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def display_name(user: User) -> str:
    full = f"{getattr(user, 'first_name', '')} {getattr(user, 'last_name', '')}".strip()
    return full or user.get_username()


def participant_snapshot(p: Participant) -> dict[str, Any]:
    return participant_shape(
        user=p.user.get_username(),
        role=p.role,
        state=p.state,
        reason=p.reason,
        extended_data=p.extended_data,
        invited_by=p.invited_by.get_username() if p.invited_by is not None else None,
        deadline=p.deadline,
        updated_at=p.updated_at,
    )


def call_snapshot(call: Call, participants: list[Participant] | None = None) -> dict[str, Any]:
    if participants is None:
        participants = list(call.participants.select_related("user", "invited_by"))
    return call_shape(
        id=call.id,
        inviter=call.inviter.get_username(),
        type=call.type,
        state=call.state,
        end_reason=call.end_reason,
        timeout=call.timeout,
        extended_data=call.extended_data,
        created_at=call.created_at,
        ended_at=call.ended_at,
        participants=[participant_snapshot(p) for p in participants],
    )


# The shapes themselves, from plain values: model instances above, plain SQL rows elsewhere
# (selectors.session_snapshots), one definition of what a client gets.


def participant_shape(
    *,
    user: str,
    role: str,
    state: str,
    reason: str | None,
    extended_data: str,
    invited_by: str | None,
    deadline: datetime | None,
    updated_at: datetime | None,
) -> dict[str, Any]:
    return {
        "user": user,
        "role": role,
        "state": state,
        "reason": reason,
        "extended_data": extended_data,
        "invited_by": invited_by,
        "deadline": iso(deadline),
        "updated_at": iso(updated_at),
    }


def call_shape(
    *,
    id: Any,
    inviter: str,
    type: str,
    state: str,
    end_reason: str | None,
    timeout: int,
    extended_data: str,
    created_at: datetime | None,
    ended_at: datetime | None,
    participants: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "id": str(id),
        "inviter": inviter,
        "type": type,
        "state": state,
        "end_reason": end_reason,
        "timeout": timeout,
        "extended_data": extended_data,
        "created_at": iso(created_at),
        "ended_at": iso(ended_at),
        "participants": participants,
    }
