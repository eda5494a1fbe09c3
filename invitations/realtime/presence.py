"""Presence fan-out: one channel-layer subscription per server process, one index of watchers.

A socket hears about the users it subscribed to (API.md "Presence"), and no one else. Were each
socket to join a group, or a group per watched user, one change would cost one channel-layer
message per watching socket, and N sockets coming online N^2/2 (issue 9: 108 s until the last of
1,000 sockets got ``session.ready``, invitations buried behind presence frames). Instead:

- each change is published once, to the ``presence.changes`` group (``invitations/presence.py``);
- each server process joins that group with ONE channel of its own, while any socket of it
  watches anybody, and re-joins it before the layer's ``group_expiry`` would drop it;
- the process looks the user up in its index (username -> watching sockets) and hands the frame
  to each of them directly, in this event loop.

So a change costs one layer message per process plus one frame per watching socket.

Ordering: a socket is put in the index, and the process' channel in the group, before the
socket's snapshot is read (``DeviceConsumer._subscribe``), so a change is either in the snapshot
or delivered after it; the socket holds back changes that arrive while its snapshot is being read
and sends them after it, so ``presence.snapshot`` always comes first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from ..presence import CHANGED, PRESENCE_GROUP, changed_event
from .devices import group_refresh_seconds

logger = logging.getLogger(__name__)


class Watcher(Protocol):
    """A socket that watches users (the device consumer)."""

    async def presence_changed(self, event: dict[str, Any]) -> None: ...


class PresenceHub:
    """This process' presence subscription and its index; one per event loop and layer."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.watchers: dict[str, set[Watcher]] = {}  # username -> sockets watching them
        self.subscriptions: dict[Watcher, frozenset[str]] = {}  # socket -> usernames
        self.channel: str | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.lock = asyncio.Lock()
        # Messages taken from the layer, and frames handed to sockets (read by tests and by
        # whoever measures the fan-out).
        self.received = 0
        self.delivered = 0

    async def watch(self, watcher: Watcher, users: Iterable[str]) -> None:
        """Make ``users`` the watcher's whole subscription (empty: none).

        When this returns, every change published from now on reaches the watcher.
        """
        wanted = frozenset(users)
        old = self.subscriptions.pop(watcher, frozenset())
        for name in old - wanted:
            watching = self.watchers.get(name)
            if watching is not None:
                watching.discard(watcher)
                if not watching:
                    del self.watchers[name]
        for name in wanted - old:
            self.watchers.setdefault(name, set()).add(watcher)
        if wanted:
            self.subscriptions[watcher] = wanted
            await self._start()
        elif not self.subscriptions:
            await self._stop()

    async def forget(self, watcher: Watcher) -> None:
        if watcher in self.subscriptions:
            await self.watch(watcher, ())

    async def _start(self) -> None:
        async with self.lock:
            if self.channel is not None:
                return
            # The layer's default prefix, as the sockets' own channels: channels-redis reads
            # every process-local channel of one prefix with one receive loop, and a second
            # prefix would wait behind the sockets' loop for a lock it seldom gets.
            channel = await self.layer.new_channel()
            await self.layer.group_add(PRESENCE_GROUP, channel)
            self.channel = channel
            self.tasks = [
                self.loop.create_task(self._receive(channel)),
                self.loop.create_task(self._refresh(channel)),
            ]

    async def _stop(self) -> None:
        """Nobody here watches anybody: leave the group rather than let changes pile up."""
        async with self.lock:
            if self.channel is None or self.subscriptions:
                return
            channel, self.channel = self.channel, None
            for task in self.tasks:
                task.cancel()
            self.tasks = []
            try:
                await self.layer.group_discard(PRESENCE_GROUP, channel)
            except Exception:  # the group forgets it after group_expiry anyway
                logger.exception("could not leave the presence group")

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # e.g. Redis restarting: keep listening
                logger.exception("presence channel %s: receive failed", channel)
                await asyncio.sleep(1)
                continue
            self.received += 1
            if message.get("type") == CHANGED:
                await self._fan_out(str(message["user"]), bool(message["online"]))

    async def _fan_out(self, user: str, online: bool) -> None:
        event = changed_event(user, online)
        for watcher in list(self.watchers.get(user, ())):
            try:
                await watcher.presence_changed(event)
                self.delivered += 1
            except Exception:  # one closing socket must not hold back the others
                logger.exception("could not deliver presence of %s", user)

    async def _refresh(self, channel: str) -> None:
        """Re-join before the layer's group_expiry, so a process up for weeks keeps hearing."""
        while True:
            await asyncio.sleep(group_refresh_seconds())
            try:
                await self.layer.group_add(PRESENCE_GROUP, channel)
            except Exception:
                logger.exception("could not re-join the presence group")


_HUB: PresenceHub | None = None


def hub_for(layer: Any) -> PresenceHub:
    """This process' hub for ``layer`` (a new one for a new event loop or layer, as in tests)."""
    global _HUB
    loop = asyncio.get_running_loop()
    if _HUB is None or _HUB.layer is not layer or _HUB.loop is not loop:
        _HUB = PresenceHub(layer)
    return _HUB
