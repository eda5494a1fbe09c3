"""Who is online: a user is online while at least one of their devices holds a fresh connection.

Connections live in the database (``DeviceConnection``), so every server process, and the REST
API of every process, sees the same answer; the process holding a socket refreshes its rows on a
heartbeat (``invitations/realtime/devices.py``), and rows not refreshed within ``PRESENCE_TTL``
seconds count as gone. This module only reads; the writes live with the WebSocket device lifecycle.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .models import DeviceConnection


def heartbeat_seconds() -> float:
    return float(settings.CALLSITE.get("PRESENCE_HEARTBEAT", 15))


def ttl_seconds() -> float:
    # Three missed heartbeats before a connection counts as gone: one slow beat is not a death.
    return float(settings.CALLSITE.get("PRESENCE_TTL", 3 * heartbeat_seconds()))


def fresh_since(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=ttl_seconds())


def online_user_ids(user_ids: list[int]) -> set[int]:
    """Which of these users have a connected device right now."""
    if not user_ids:
        return set()
    return set(
        DeviceConnection.objects.filter(user_id__in=user_ids, last_seen__gte=fresh_since())
        .values_list("user_id", flat=True)
        .distinct()
    )


def user_is_online(user_id: int) -> bool:
    return DeviceConnection.objects.filter(user_id=user_id, last_seen__gte=fresh_since()).exists()
