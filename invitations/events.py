"""Publishing call events to devices and deadlines to the timer worker, after commit only.

Services collect what to tell whom in an Outbox while their transaction runs; ``send_on_commit``
takes one snapshot of the call as it stands at the end of the transaction (``snapshot`` returns
it) and hands everything to the channel layer in ``transaction.on_commit``. Delivery is at most
once: clients heal through ``session.ready`` and ``GET /api/calls/{id}/``, so nothing here
retries.

Push is the exception, because a phone without a socket has no ``session.ready`` to heal
through: the Outbox also notes who started and stopped ringing (``ring``, ``ring_stopped``),
and ``send_on_commit`` turns those notes into push rows *inside* the transaction
(``push/triggers.py``); after commit it only wakes the delivery worker, which retries.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from callsite import lifecycle, metrics

from .models import Call, Participant
from .snapshots import call_snapshot

logger = logging.getLogger(__name__)

EVERYONE = None  # recipient marker: every participant who should hear about this call


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def event_recipients(participants: list[Participant]) -> list[int]:
    """Every participant of the call, except users rejected as busy: they never rang."""
    return [p.user_id for p in participants if not p.is_rejected_as_busy]


@dataclass
class Outbox:
    call: Call
    _events: list[tuple[list[int] | None, dict[str, Any]]] = field(default_factory=list)
    _timers: list[dict[str, Any]] = field(default_factory=list)
    _snapshot: dict[str, Any] | None = None
    _recipients: list[int] = field(default_factory=list)
    _rings: list[tuple[Participant, datetime]] = field(default_factory=list)
    _stops: list[tuple[Participant, str, str]] = field(default_factory=list)

    def to_user(self, user_id: int, type: str, **fields: Any) -> None:
        self._events.append(([user_id], {"type": type, **fields}))

    def to_everyone(self, type: str, **fields: Any) -> None:
        self._events.append((EVERYONE, {"type": type, **fields}))

    def ring(self, p: Participant, deadline: datetime) -> None:
        """``p`` started ringing until ``deadline``: their push devices are owed a ring."""
        self._rings.append((p, deadline))

    def ring_stopped(self, p: Participant, reason: str, device_id: str = "") -> None:
        """``p`` stopped ringing (``reason``: cancelled, timeout, answered_elsewhere, rejected,
        ended): the devices that got the ring are owed a stop, except ``device_id``, the one
        that acted."""
        self._stops.append((p, reason, device_id))

    def schedule_participant(self, participant_id: int, deadline: datetime) -> None:
        self._timers.append(
            {
                "type": "timer.schedule",
                "kind": "invitation",
                "id": participant_id,
                "at": deadline.timestamp(),
            }
        )

    def schedule_participant_offline(self, participant_id: int, deadline: datetime) -> None:
        self._timers.append(
            {
                "type": "timer.schedule",
                "kind": "participant_offline",
                "id": participant_id,
                "at": deadline.timestamp(),
            }
        )

    def schedule_caller_offline(self, deadline: datetime) -> None:
        self._timers.append(
            {
                "type": "timer.schedule",
                "kind": "caller_offline",
                "id": str(self.call.pk),
                "at": deadline.timestamp(),
            }
        )

    def snapshot(self) -> dict[str, Any]:
        """The call as it stands now, read once: call it at the end of the transaction."""
        if self._snapshot is None:
            participants = list(self.call.participants.select_related("user", "invited_by"))
            self._snapshot = call_snapshot(self.call, participants)
            self._recipients = event_recipients(participants)
        return self._snapshot

    def snapshot_from(self, participants: list[Participant]) -> dict[str, Any]:
        """``snapshot()`` from participants the caller already holds, up to date and in the
        call's order (joined_at, id): batch writers read every call's rows in one query."""
        self._snapshot = call_snapshot(self.call, participants)
        self._recipients = event_recipients(participants)
        return self._snapshot

    def outgoing(self) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
        """The (group, payload) messages, each event carrying ``snapshot()``, and the timers."""
        snapshot = self.snapshot()
        messages: list[tuple[str, dict[str, Any]]] = []
        for recipients, event in self._events:
            payload = {**event, "call_id": snapshot["id"], "call": snapshot}
            for user_id in self._recipients if recipients is EVERYONE else recipients:
                messages.append((user_group(user_id), payload))
        return messages, list(self._timers)

    def send_on_commit(self) -> None:
        """Hand every event (carrying ``snapshot()``) and timer to the layer after commit."""
        send_on_commit([self])


def send_on_commit(boxes: list[Outbox]) -> None:
    """Send several calls' outboxes after commit in one hand-off to the channel layer.

    Each ``send`` crosses from this thread to an event loop and back (``async_to_sync``); a
    batch of a hundred calls pays that once instead of a hundred times.
    """
    messages: list[tuple[str, dict[str, Any]]] = []
    timers: list[dict[str, Any]] = []
    for box in boxes:
        box_messages, box_timers = box.outgoing()
        messages += box_messages
        timers += box_timers
    direct: list[tuple[str, dict[str, Any]]] = []
    if _enqueue_pushes(boxes):
        direct.append((settings.PUSH_CHANNEL, {"type": "push.wake"}))
    if messages or timers or direct:
        transaction.on_commit(lambda: send(messages, timers, direct))
    events = [event for box in boxes for _, event in box._events]
    transaction.on_commit(lambda: metrics.count_outcomes(events))


def _enqueue_pushes(boxes: list[Outbox]) -> bool:
    """The boxes' rings and stops as push rows, in this transaction; True if any was written."""
    if not any(box._rings or box._stops for box in boxes):
        return False
    from django.utils import timezone

    from .push import triggers  # push reads presence, which publishes through this module

    rings = [triggers.Ring(box.call, p, at) for box in boxes for p, at in box._rings]
    stops = [triggers.Stop(box.call, p, why, dev) for box in boxes for p, why, dev in box._stops]
    return triggers.enqueue(rings, stops, timezone.now())


def send(
    messages: list[tuple[str, dict[str, Any]]],
    timers: list[dict[str, Any]],
    direct: list[tuple[str, dict[str, Any]]] | None = None,
) -> None:
    """Publish events to user groups, timers to the timer worker, ``direct`` messages to
    their channels (the push worker's wake-up)."""
    direct = direct or []
    layer = get_channel_layer()
    if layer is None:
        return
    workers = get_channel_layer(settings.WORKER_CHANNEL_LAYER)
    if not lifecycle.publishing_allowed():
        # The event loop is stopping (callsite/graceful.py): a publish handed to it would never
        # run, and this thread would wait for it for ever. Devices resync through session.ready.
        logger.warning(
            "not publishing %d events and %d timers: this process is stopping",
            len(messages),
            len(timers),
        )
        return
    try:
        async_to_sync(_send_all)(layer, workers, messages, timers, direct)
    except Exception:  # the commit stands; clients resync, the timer rescan catches up
        logger.exception("could not publish %d events and %d timers", len(messages), len(timers))
        return
    if any(payload["type"] == "call.invitation_received" for _, payload in messages):
        metrics.invitation_published()


def frame(event: dict[str, Any]) -> str:
    """The text of a server -> client frame: every socket sends events in this one form."""
    return json.dumps(event, separators=(",", ":"))


def call_event_messages(
    messages: list[tuple[str, dict[str, Any]]],
) -> list[tuple[str, dict[str, Any]]]:
    """One ``call.event`` layer message per group, holding that group's frames in order.

    Each event goes out as its frame's text, made once here: an event reaches all of a call's
    participants' sockets, and a dict would be copied by the in-memory layer and serialised
    again by every socket (12% of a loaded server's event loop, py-spy, issue 9). A group's
    frames of one commit travel together: a 1:1 timeout tells each user two to three things,
    and every layer message costs its receiving server a Redis read and a dispatch (issue 9,
    bench/README.md "tenth round"). A socket is in its user's group only, so nothing orders
    frames across groups.
    """
    texts: dict[int, str] = {}
    by_group: dict[str, list[str]] = {}
    for group, payload in messages:
        text = texts.get(id(payload))
        if text is None:
            text = texts[id(payload)] = frame(payload)
        by_group.setdefault(group, []).append(text)
    return [(group, {"type": "call.event", "texts": t}) for group, t in by_group.items()]


async def group_send_all(layer: Any, sends: list[tuple[str, dict[str, Any]]]) -> None:
    """``group_send`` each (group, message), in order: on Redis PubSub in one round trip."""
    send_many = getattr(layer, "group_send_many", None)
    if send_many is not None:
        await send_many(sends)
        return
    for group, message in sends:
        await layer.group_send(group, message)


async def _send_all(
    layer: Any,
    workers: Any,
    messages: list[tuple[str, dict[str, Any]]],
    timers: list[dict[str, Any]],
    direct: list[tuple[str, dict[str, Any]]] | None = None,
) -> None:
    await group_send_all(layer, call_event_messages(messages))
    # Sockets hear ``layer``; the workers' channels are on ``workers`` (settings/channel_layer.py).
    for timer in timers:
        await workers.send(settings.TIMER_CHANNEL, timer)
    for channel, message in direct or []:
        try:
            await workers.send(channel, message)
        except ChannelFull:
            # Wake-ups nobody read yet: the worker is busy or down, and rescans the table
            # anyway (PUSH_RESCAN_SECONDS), so one more changes nothing.
            pass
