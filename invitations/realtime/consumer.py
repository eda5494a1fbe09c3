"""The /ws/ device consumer: one instance per open socket (API.md "WebSocket /ws/").

It only routes: parse a frame (protocol), check access (auth put the user in the scope;
relay rules in relay.py), call a service or selector, and forward what the channel layer brings:

- ``call.event``     from services (events.py), to group ``user.<id>``: its frames, sent as is;
- ``rtc.relay``      from another socket's rtc.signal, to group ``user.<id>``: sent unless it is
  addressed to another device of the same user.

``presence.changed`` does not come through the socket's channel: the process' presence hub
(presence.py) hands it to the sockets that subscribed to that user.

Messages from the channel layer are handled one at a time, in order, after ``connect`` returns,
so ``session.ready`` is always the first frame and anything published after its snapshot was
taken follows it (a client may see an event twice, never miss one that the layer delivered).
"""

from __future__ import annotations

import logging
import sys
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import User

from callsite import logs

from .. import selectors, services
from ..errors import CallError
from ..events import frame, user_group
from ..presence import subscribe_limit
from . import limits, protocol, relay
from .devices import LOCAL
from .dispatch import DirectDispatch
from .executor import db_call
from .presence import hub_for
from .revocation import WATCH

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_TOO_BIG = 1009
# Daphne (autobahn) only lets applications close with 1000 or 3000-4999 and raises on 1009.
CLOSE_TOO_BIG_DAPHNE = 4009


def _too_big_code() -> int:
    # Daphne is the only server here that runs on Twisted; its reactor runs only inside it.
    reactor = sys.modules.get("twisted.internet.reactor")
    return CLOSE_TOO_BIG_DAPHNE if reactor is not None and reactor.running else CLOSE_TOO_BIG


_presence_snapshot = db_call(selectors.presence_snapshot)


class DeviceConsumer(DirectDispatch, AsyncWebsocketConsumer):
    user: User
    device_id: str
    registered = False
    # presence.changed held back while this socket's presence.snapshot is being read (None: none
    # is), so the snapshot always goes first; see presence.py.
    presence_pending: list[dict[str, Any]] | None = None
    closing = False  # closed by us for flooding: whatever still arrives is dropped

    async def connect(self) -> None:
        # Accept first, then close: a close before accept becomes an HTTP 403 on most servers,
        # and the client would never see the 4401 that API.md promises.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._send(
                protocol.error(CallError("not_authenticated", "Authenticate to use /ws/."))
            )
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        try:
            self.device_id = protocol.device_id_from(query)
        except CallError as exc:
            await self._send(protocol.error(exc))
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.budget = limits.MessageBudget()
        self.user = user
        logs.annotate(user=user.get_username())  # every later line of this socket names them
        self.auth_token: str | None = self.scope.get("auth_token")
        self.session_key: str | None = self.scope.get("auth_session_key")
        self.password_seen = user.password
        try:
            # Counted and recorded in one step under the user's lock (realtime/limits.py).
            await LOCAL.add(self, limit=limits.max_sockets())
        except limits.TooManySocketsError:
            await self._send(
                protocol.error(
                    CallError(
                        "throttled",
                        f"At most {limits.max_sockets()} sockets per user: close another first.",
                    )
                )
            )
            await self.close(code=limits.CLOSE_TOO_MANY)
            return
        self.registered = True
        WATCH.add(self)
        # Join the groups before the snapshot is read, so nothing falls between the two.
        await self.refresh_groups()
        await self._send(await db_call(protocol.session_ready)(self.user, self.device_id))

    async def refresh_groups(self) -> None:
        """Join (again) the groups; re-joining resets the layer's group_expiry clock."""
        await self.channel_layer.group_add(user_group(self.user.pk), self.channel_name)

    async def disconnect(self, code: int) -> None:
        if not self.registered:
            return
        self.registered = False
        WATCH.discard(self)
        await self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)
        await hub_for(self.channel_layer).forget(self)
        await LOCAL.remove(self)

    async def close_revoked(self) -> None:
        """The credentials this socket came with are gone (realtime/revocation.py)."""
        await self._send(
            protocol.error(CallError("not_authenticated", "Your credentials were revoked."))
        )
        await self.close(code=CLOSE_UNAUTHENTICATED)

    # --- client -> server ------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.registered or self.closing:
            return
        verdict = self.budget.take()
        if verdict is not limits.Verdict.OK:
            await self._over_budget(verdict)
            return
        if protocol.frame_size(text_data, bytes_data) > protocol.MAX_FRAME_BYTES:
            await self.close(code=_too_big_code())
            return
        message: dict[str, Any] | None = None
        try:
            message = protocol.parse(text_data, bytes_data)
            kind = message["type"]
            if kind == "ping":
                await self._send({"type": "pong"})
            elif kind == "call.ack":
                await self._ack(message)
            elif kind == "rtc.signal":
                await self._relay(message)
            elif kind == "presence.subscribe":
                await self._subscribe(message)
        except CallError as exc:
            await self._send(protocol.error(exc, message))
        except Exception:  # a bug or a database hiccup: tell the device, keep the socket
            logger.exception("ws message from %s failed", self.user)
            failure = CallError("server_error", "Something went wrong on the server.")
            await self._send(protocol.error(failure, message))

    async def _over_budget(self, verdict: limits.Verdict) -> None:
        """A message over the socket's budget is dropped unread (realtime/limits.py)."""
        if verdict is limits.Verdict.CLOSE:
            self.closing = True
            await self._send(
                protocol.error(CallError("throttled", "Too many messages for too long."))
            )
            await self.close(code=limits.CLOSE_TOO_MANY)
        elif verdict is limits.Verdict.DROP_AND_TELL:
            rate = settings.CALLSITE["WS_RATE"]
            await self._send(
                protocol.error(
                    CallError(
                        "throttled",
                        f"Too many messages: at most {rate:g} a second; some were dropped.",
                    )
                )
            )

    async def _ack(self, message: dict[str, Any]) -> None:
        call_id = protocol.ack_call_id(message)
        await db_call(services.acknowledge)(
            actor=self.user, call_id=call_id, device_id=self.device_id
        )

    async def _subscribe(self, message: dict[str, Any]) -> None:
        users = protocol.presence_users(message, subscribe_limit())  # invalid: old set kept
        self.presence_pending = []
        try:
            # Watched before the snapshot is read, so no change falls between the two.
            await hub_for(self.channel_layer).watch(self, users)
            snapshot = await _presence_snapshot(users)
            await self._send(snapshot)
        finally:
            held, self.presence_pending = self.presence_pending, None
        for event in held:
            await self._send(event)

    async def _relay(self, message: dict[str, Any]) -> None:
        signal = protocol.signal(message)
        target = await db_call(relay.resolve)(
            sender=self.user, call_id=signal.call_id, to=signal.to
        )
        # Awaited one by one from this single consumer: signals leave in the order they came,
        # and the layer keeps per-channel order, so the peer sees them in the same order.
        await self.channel_layer.group_send(
            user_group(target.user_id),
            {
                "type": "rtc.relay",
                "to_device": target.device_id,
                "event": protocol.rtc_signal(
                    call_id=target.call_id,
                    sender=self.user.get_username(),
                    sender_device=self.device_id,
                    data=signal.data,
                ),
            },
        )

    # --- channel layer -> client -------------------------------------------------------------

    async def call_event(self, message: dict[str, Any]) -> None:
        # Made once for every socket, in order (events.py). A single "text" is the shape before
        # issue 9's tenth round: a worker not yet restarted in a rolling deploy still sends it.
        for text in message.get("texts") or [message["text"]]:
            await self.send(text_data=text)

    async def presence_changed(self, event: dict[str, Any]) -> None:
        """From the process' presence hub, for a user this socket watches."""
        if not self.registered:
            return
        if self.presence_pending is not None:
            self.presence_pending.append(event)
            return
        await self._send(event)

    async def rtc_relay(self, message: dict[str, Any]) -> None:
        to_device = message.get("to_device") or ""
        if to_device and to_device != self.device_id:
            return
        await self._send(message["event"])

    async def _send(self, event: dict[str, Any]) -> None:
        await self.send(text_data=frame(event))
