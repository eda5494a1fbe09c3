"""Who is online, as subscribers and the REST API see it, and how a change is published.

Two questions, two answers:

- *Is a device of this user connected now?* ``DeviceConnection`` rows, refreshed by the holding
  process' heartbeat (``invitations/realtime/devices.py``); rows not refreshed within
  ``PRESENCE_TTL`` seconds count as gone. The caller-offline rules ask this.
- *Is this user online?* ``UserPresence.online``, what ``presence.changed`` told subscribers and
  what ``/api/users/`` shows. It turns offline only ``PRESENCE_GRACE`` seconds after the last
  device went away (services/devices.py), so a page reload is no change at all.

A change is published once per change, to one channel-layer group that each server process
joins with ONE channel (``invitations/realtime/presence.py``), which fans it out locally to the
sockets watching that user: the cost follows the subscribers, not the sockets.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from callsite import lifecycle

from .events import group_send_all, send
from .models import DeviceConnection, UserPresence

logger = logging.getLogger(__name__)

# The group each server process' presence channel joins; no socket ever joins it.
PRESENCE_GROUP = "presence.changes"
CHANGED = "presence.changed"  # the message type on the layer, and the frame sockets get


def heartbeat_seconds() -> float:
    return float(settings.CALLSITE.get("PRESENCE_HEARTBEAT", 15))


def ttl_seconds() -> float:
    # Three missed heartbeats before a connection counts as gone: one slow beat is not a death.
    return float(settings.CALLSITE.get("PRESENCE_TTL", 3 * heartbeat_seconds()))


def grace_seconds() -> float:
    return float(settings.CALLSITE.get("PRESENCE_GRACE", 5))


def subscribe_limit() -> int:
    return int(settings.CALLSITE.get("PRESENCE_SUBSCRIBE_MAX", 500))


def fresh_since(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=ttl_seconds())


def online_user_ids(user_ids: list[int]) -> set[int]:
    """Which of these users are online (what subscribers were told)."""
    if not user_ids:
        return set()
    return set(
        UserPresence.objects.filter(user_id__in=user_ids, online=True).values_list(
            "user_id", flat=True
        )
    )


def connected_user_ids(user_ids: list[int]) -> set[int]:
    """Which of these users hold a fresh connection right now (no grace)?"""
    if not user_ids:
        return set()
    return set(
        DeviceConnection.objects.filter(user_id__in=user_ids, last_seen__gte=fresh_since())
        .values_list("user_id", flat=True)
        .distinct()
    )


def changed_event(username: str, online: bool) -> dict[str, Any]:
    return {"type": CHANGED, "user": username, "online": online}


def publish(username: str, online: bool) -> None:
    """Tell every server process (one message each); at most once, like every event."""
    publish_many([(username, online)])


def publish_many(changes: list[tuple[str, bool]]) -> None:
    """``publish`` for several users' changes (username, online), in order, in one hop."""
    layer = get_channel_layer()
    # A stopping process publishes nothing: its loop would never run the send (see events.send).
    if not changes or layer is None or not lifecycle.publishing_allowed():
        return
    try:
        sends = [(PRESENCE_GROUP, changed_event(*change)) for change in changes]
        async_to_sync(group_send_all)(layer, sends)
    except Exception:  # subscribers re-read through their next presence.snapshot
        logger.exception("could not publish the presence of %d users", len(changes))


def publish_on_commit(username: str, online: bool) -> None:
    publish_many_on_commit([(username, online)])


def publish_many_on_commit(changes: list[tuple[str, bool]]) -> None:
    transaction.on_commit(lambda: publish_many(changes))


def schedule_offline_on_commit(user_id: int, deadline: datetime) -> None:
    """Ask the timer worker to settle the user's grace at ``deadline`` (after commit)."""
    timer = {
        "type": "timer.schedule",
        "kind": "presence_offline",
        "id": user_id,
        "at": deadline.timestamp(),
    }
    transaction.on_commit(lambda: send([], [timer]))
