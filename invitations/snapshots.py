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
    return {
        "user": p.user.get_username(),
        "role": p.role,
        "state": p.state,
        "reason": p.reason,
        "extended_data": p.extended_data,
        "invited_by": p.invited_by.get_username() if p.invited_by is not None else None,
        "deadline": iso(p.deadline),
        "updated_at": iso(p.updated_at),
    }


def call_snapshot(call: Call, participants: list[Participant] | None = None) -> dict[str, Any]:
    if participants is None:
        participants = list(call.participants.select_related("user", "invited_by"))
    return {
        "id": str(call.id),
        "inviter": call.inviter.get_username(),
        "type": call.type,
        "state": call.state,
        "end_reason": call.end_reason,
        "timeout": call.timeout,
        "extended_data": call.extended_data,
        "created_at": iso(call.created_at),
        "ended_at": iso(call.ended_at),
        "participants": [participant_snapshot(p) for p in participants],
    }
