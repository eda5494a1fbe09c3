"""The device lifecycle behind presence and "caller offline".

A device is one open /ws/ socket. Its connection is a ``DeviceConnection`` row, so every server
process sees it through the database. The transitions that matter happen under the user's
``UserLock`` row (``services.lock_users``), so "was this the last device?" is decided once even
when two devices of a user connect or drop at the same moment. It is the row ``services.invite``
locks for the inviter, so a call started while the inviter's last device drops is seen by exactly
one of the two:

- any device connects     -> ``services.mark_user_online``: the offline countdowns stop, and a
  user who was offline goes online (``presence.changed`` to their subscribers); one back within
  the presence grace (a page reload) was never offline, and nobody hears a thing;
- last device disconnects -> ``services.mark_user_offline``: a call they ring out ends, they
  leave calls they talk in, and they go offline for their subscribers, each unless they return
  in time (the timer worker settles each countdown).

A server that shuts down gracefully releases its rows before it stops (``release_server``, run by
``callsite/lifecycle.release``): its users stop counting as connected at once, not 45 s later, and
those with no device elsewhere start the same countdowns as a last device leaving, with the
presence grace as it is (a device back on another process within it causes no offline/online
flap) and the call countdowns lengthened by ``PRESENCE_TTL`` (what the sweep would have given), so
calls in progress still wait for their devices to resume on another process.

Each server process runs one heartbeat task (while it holds sockets) that refreshes
``last_seen`` of its connections, re-creates rows another process swept by mistake (e.g. after
this process stalled), sweeps rows nobody refreshed within ``PRESENCE_TTL`` (a process that was
killed) with the same offline consequences, and re-joins channel groups well before the channel
layer's ``group_expiry`` drops them, so a socket open for weeks keeps receiving events.

Who hears of a presence change is ``realtime/presence.py``'s business: no socket joins a
presence group.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from typing import Protocol

from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from callsite import lifecycle

from .. import presence, services
from ..models import DeviceConnection
from ..services import connect_sql
from .executor import db_call
from .limits import TooManySocketsError

logger = logging.getLogger(__name__)

# Identifies this process' rows; hostname and pid help whoever reads the table.
SERVER_ID = f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


class Device(Protocol):
    """What the heartbeat needs from a live consumer."""

    channel_name: str
    device_id: str
    user: User
    registered: bool  # False from the moment the socket starts closing

    async def refresh_groups(self) -> None: ...


def _grace() -> float:
    return float(settings.CALLSITE["CALLER_OFFLINE_GRACE"])


def _went_offline(user: User) -> None:
    """Inside the user's lock: their last device is gone."""
    services.mark_user_offline(user=user, grace=_grace())


def device_connected(
    *,
    user: User,
    device_id: str,
    channel_name: str,
    unless_closed: Device | None = None,
    limit: int | None = None,
) -> bool:
    """Record a new socket; True if it brought the user online (for their subscribers).

    With ``limit``, raise ``TooManySocketsError`` (and record nothing) if the user already holds
    that many fresh sockets. Counted under the user's lock, in the transaction that inserts the row,
    so two connects racing on any threads or processes are counted one after the other.
    """
    now = timezone.now()
    with transaction.atomic():
        services.lock_users([user.pk])
        if unless_closed is not None and not unless_closed.registered:
            # Re-registering a swept row, but the socket closed meanwhile: its disconnect has
            # run or will run after this lock, and must not find a row to resurrect.
            return False
        if limit is not None:
            held = connect_sql.fresh_devices_besides(user.pk, channel_name, presence.fresh_since())
            if held >= limit:
                raise TooManySocketsError(held)
        if unless_closed is None:
            # A new socket's channel name is new: one INSERT, where update_or_create's read and
            # two savepoints made the connect's write transaction (SQLite's one writer) 13
            # statements instead of 8.
            connect_sql.insert_device(
                user_id=user.pk,
                device_id=device_id,
                channel_name=channel_name,
                server_id=SERVER_ID,
                now=now,
            )
        else:
            row = {"user": user, "device_id": device_id, "server_id": SERVER_ID, "last_seen": now}
            DeviceConnection.objects.update_or_create(channel_name=channel_name, defaults=row)
        # On every connect, not only the first: cheap, and it heals a deadline set by a sweep
        # that raced with this device.
        return services.mark_user_online(user=user)


def device_disconnected(*, user: User, channel_name: str) -> bool:
    """Forget a closed socket; True if it was the user's last device."""
    with transaction.atomic():
        services.lock_users([user.pk])
        deleted, _ = DeviceConnection.objects.filter(channel_name=channel_name).delete()
        still_online = DeviceConnection.objects.filter(
            user=user, last_seen__gte=presence.fresh_since()
        ).exists()
        # Nothing deleted means a sweep already took this row, and with it the consequences.
        if deleted and not still_online:
            _went_offline(user)
            return True
    return False


def release_server(
    *, deadline: float, server_id: str = SERVER_ID, chunk: int = 25
) -> tuple[int, int]:
    """At shutdown: delete this process' rows; returns (users released, of whom went offline).

    A chunk of users at a time, in one transaction under their locks (one statement on
    PostgreSQL), so "was it the user's last device?" is decided as a last disconnect decides it;
    in a rolling restart most devices are back on another process by now, so few users need
    more. Chunks not reached by ``deadline`` (monotonic) keep their rows, which another process
    sweeps after ``PRESENCE_TTL``, as after a crash.
    """
    user_ids = sorted(
        set(DeviceConnection.objects.filter(server_id=server_id).values_list("user_id", flat=True))
    )
    # Calls wait as long as they did when the rows stayed until the sweep.
    call_grace = _grace() + presence.ttl_seconds()
    released = offline = 0
    for i in range(0, len(user_ids), chunk):
        if time.monotonic() >= deadline:
            left = len(user_ids) - released
            logger.warning("shutdown: the devices of %d users are left for the sweep", left)
            break
        ids = user_ids[i : i + chunk]
        with transaction.atomic():
            services.lock_users(ids)
            DeviceConnection.objects.filter(server_id=server_id, user_id__in=ids).delete()
            elsewhere = set(
                DeviceConnection.objects.filter(
                    user_id__in=ids, last_seen__gte=presence.fresh_since()
                ).values_list("user_id", flat=True)
            )
            users = get_user_model().objects.in_bulk([u for u in ids if u not in elsewhere])
            for user in users.values():
                services.mark_user_offline(user=user, grace=call_grace)
                offline += 1
        released += len(ids)
    return released, offline


async def _release_on_shutdown(deadline: float) -> None:
    released, offline = await db_call(release_server)(deadline=deadline)
    logger.warning(
        "shutdown: released the devices of %d users (%d with no device left elsewhere)",
        released,
        offline,
    )


lifecycle.on_release(_release_on_shutdown)


def heartbeat(devices: Iterable[Device]) -> None:
    """Refresh this process' rows, put back any a sweep removed, then sweep dead processes."""
    live = {d.channel_name: d for d in devices}
    now = timezone.now()
    names = list(live)
    refreshed: set[str] = set()
    for i in range(0, len(names), 500):
        chunk = names[i : i + 500]
        DeviceConnection.objects.filter(channel_name__in=chunk).update(
            last_seen=now, server_id=SERVER_ID
        )
        refreshed.update(
            DeviceConnection.objects.filter(channel_name__in=chunk).values_list(
                "channel_name", flat=True
            )
        )
    for name in set(names) - refreshed:
        d = live[name]
        if not d.registered:
            continue  # closed since the snapshot: its row is gone on purpose
        logger.warning("re-registering swept device %s of %s", d.device_id, d.user)
        try:
            device_connected(user=d.user, device_id=d.device_id, channel_name=name, unless_closed=d)
        except Exception:  # e.g. the user was deleted: one device must not stop the others
            logger.exception("could not re-register device %s", d.device_id)
    sweep()


def sweep(limit: int = 500) -> int:
    """Delete connections nobody refreshed within the TTL; returns how many users went offline."""
    cutoff = presence.fresh_since()
    user_ids = list(
        DeviceConnection.objects.filter(last_seen__lt=cutoff)
        .values_list("user_id", flat=True)
        .distinct()[:limit]
    )
    gone = 0
    users = get_user_model().objects.in_bulk(user_ids)
    for user_id in user_ids:
        with transaction.atomic():
            services.lock_users([user_id])
            deleted, _ = DeviceConnection.objects.filter(
                user_id=user_id, last_seen__lt=presence.fresh_since()
            ).delete()
            still_online = DeviceConnection.objects.filter(
                user_id=user_id, last_seen__gte=presence.fresh_since()
            ).exists()
            if deleted and not still_online and user_id in users:
                logger.info("user %s went offline with a dead server process", users[user_id])
                _went_offline(users[user_id])
                gone += 1
    return gone


# --- this process' live devices and its heartbeat task ------------------------------------------


class _Local:
    """The sockets this process holds, and the one task that keeps their rows fresh."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.task: asyncio.Task[None] | None = None
        self.last_group_refresh = time.monotonic()

    def _ensure_task(self) -> None:
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.last_group_refresh = time.monotonic()
            self.task = loop.create_task(self._run())

    async def add(self, device: Device, *, limit: int | None = None) -> bool:
        """Register a new socket (``TooManySocketsError`` past ``limit``: then it is not held)."""
        self.devices[device.channel_name] = device
        self._ensure_task()
        try:
            first: bool = await db_call(device_connected)(
                user=device.user,
                device_id=device.device_id,
                channel_name=device.channel_name,
                limit=limit,
            )
        except BaseException:
            self._drop(device)
            raise
        return first

    def _drop(self, device: Device) -> None:
        self.devices.pop(device.channel_name, None)
        if not self.devices and self.task is not None:
            # No sockets, nothing to keep fresh (and no task left behind in a closing loop).
            self.task.cancel()
            self.task = None

    async def remove(self, device: Device) -> bool:
        self._drop(device)
        if lifecycle.draining():
            # This process is shutting down and the device is moving to another one: its row
            # goes with the process' others at the end of the drain (release_server), in one
            # pass, and its calls stay as they are (callsite/graceful.py).
            return False
        last: bool = await db_call(device_disconnected)(
            user=device.user, channel_name=device.channel_name
        )
        return last

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(presence.heartbeat_seconds())
            if lifecycle.draining():
                return  # shutting down: the rows are released, never re-registered
            try:
                await db_call(heartbeat)(list(self.devices.values()))
            except Exception:  # a database hiccup must not stop future heartbeats
                logger.exception("presence heartbeat failed")
            if time.monotonic() - self.last_group_refresh >= group_refresh_seconds():
                self.last_group_refresh = time.monotonic()
                for device in list(self.devices.values()):
                    try:
                        await device.refresh_groups()
                    except Exception:
                        logger.exception("could not refresh groups of %s", device.channel_name)


def group_refresh_seconds() -> float:
    """Re-join groups at half the layer's group_expiry (at most daily), never letting them lapse."""
    configured = settings.CALLSITE.get("GROUP_REFRESH_SECONDS")
    if configured:
        return float(configured)
    layer = get_channel_layer()
    expiry = float(getattr(layer, "group_expiry", 86400) or 86400)
    return min(86400.0, expiry / 2)


LOCAL = _Local()
