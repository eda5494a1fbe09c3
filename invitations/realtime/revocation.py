"""Sockets lose their credentials with them: a revoked or expired token, a browser session logged
out (or expired), a password change or a deactivated user closes the sockets concerned with 4401
within ``AUTH_RECHECK_SECONDS`` (10 s; API.md promises 20). A logout closes only the sockets of
that session (its cookie, or the tickets it asked for): the user's other sessions and tokens keep
theirs.

Each process re-checks the credentials of all its sockets on one timer, in three queries however
many sockets it holds, rather than trusting an event to reach them: channel-layer delivery is at
most once, and a revocation that got lost would leave a socket open for days. The same pass
renews the tokens of sockets that stay open, since a socket is a token in use.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import knox_settings

from .. import tokens
from .executor import db_call

logger = logging.getLogger(__name__)


class Watched(Protocol):
    channel_name: str
    user: Any
    auth_token: str | None  # the token's digest, None for a browser session
    session_key: str | None  # the browser session behind the socket, None for a token
    password_seen: str  # the user's password hash when the socket authenticated

    async def close_revoked(self) -> None: ...


def revoked(sockets: list[Watched]) -> list[Watched]:
    """The sockets whose user or token no longer lets them in."""
    if not sockets:
        return []
    users = {
        pk: (active, password)
        for pk, active, password in get_user_model()
        .objects.filter(pk__in={s.user.pk for s in sockets})
        .values_list("pk", "is_active", "password")
    }
    digests = {s.auth_token for s in sockets if s.auth_token}
    alive = tokens.live_digests(digests)
    sessions = tokens.live_sessions(s.session_key for s in sockets if s.session_key)
    if alive:
        ttl = tokens.ttl()
        soon = timezone.now() + ttl - timedelta(seconds=knox_settings.MIN_REFRESH_INTERVAL)
        AuthToken.objects.filter(digest__in=alive, expiry__lt=soon).update(
            expiry=timezone.now() + ttl
        )
    gone = []
    for s in sockets:
        active, password = users.get(s.user.pk, (False, ""))
        token_gone = bool(s.auth_token) and s.auth_token not in alive
        session_gone = bool(s.session_key) and s.session_key not in sessions
        if not active or password != s.password_seen or token_gone or session_gone:
            gone.append(s)
    return gone


class _Watch:
    def __init__(self) -> None:
        self.sockets: dict[str, Watched] = {}
        self.task: asyncio.Task[None] | None = None

    def add(self, socket: Watched) -> None:
        self.sockets[socket.channel_name] = socket
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._run())

    def discard(self, socket: Watched) -> None:
        self.sockets.pop(socket.channel_name, None)
        if not self.sockets and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(settings.CALLSITE["AUTH_RECHECK_SECONDS"])
            try:
                gone = await db_call(revoked)(list(self.sockets.values()))
            except Exception:  # a database hiccup: try again next time
                logger.exception("socket credential re-check failed")
                continue
            for socket in gone:
                self.sockets.pop(socket.channel_name, None)
                try:
                    await socket.close_revoked()
                except Exception:
                    logger.exception("could not close revoked socket %s", socket.channel_name)


WATCH = _Watch()
