"""Who is on the other end of a /ws/ socket (API.md "WebSocket /ws/": Authentication).

Four ways in, checked in this order:

1. ``Authorization: Token <key>`` (or ``Bearer <key>``), the native apps, which often send no
   Origin header;
2. ``?ticket=<ticket>`` from ``POST /api/ws/ticket/``: single use, 30 s, for clients that cannot
   set headers (browsers' WebSocket API, CLI tools);
3. ``?token=<key>``, discouraged (a URL ends up in proxy logs) but kept for existing clients;
4. the Django session cookie, the browser app, and only when the socket's ``Origin`` is this site
   (same host as the ``Host`` header, that host allowed by ``ALLOWED_HOSTS``) or listed in
   ``CSRF_TRUSTED_ORIGINS``. Browsers attach cookies to cross-site WebSocket handshakes and there
   is no CSRF token on a handshake, so without this check any page could open a socket as the
   visitor (cross-site WebSocket hijacking). Tokens are not ambient, so they need no such check.

A token or ticket that was given but is wrong does not fall back to the cookie: the client asked
for that identity. The result lands in ``scope["user"]`` (AnonymousUser when nothing matched),
``scope["auth"]`` (``"token"``, ``"ticket"``, ``"session"`` or ``None``) and
``scope["auth_token"]`` (the token's digest, when a token stands behind the socket, so revoking it
closes the socket) and ``scope["auth_session_key"]`` (the browser session behind a cookie socket
or a ticket the session asked for, so logging that session out closes the socket); the consumer
closes anonymous sockets with 4401.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import get_user
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from .. import tokens
from .executor import db_call


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin1")
    return None


def _credential_from(scope: dict[str, Any]) -> tuple[str, str] | None:
    """("token" | "ticket", value) the client sent, or None to try the session cookie."""
    header = _header(scope, b"authorization")
    if header:
        scheme, _, key = header.strip().partition(" ")
        if scheme.lower() in {"token", "bearer"} and key.strip():
            return "token", key.strip()
        return "token", ""  # an Authorization header we cannot use: the client meant to log in
    raw_query: bytes = scope.get("query_string", b"")
    query = parse_qs(raw_query.decode("latin1"))
    if "ticket" in query:
        return "ticket", query["ticket"][0].strip()
    if "token" in query:
        return "token", query["token"][0].strip()
    return None


# Not on the process's one shared sync thread: a read needs no ordering, and there it queued
# behind every other socket's connect and disconnect transactions, so in a reconnect storm
# handshakes waited past Daphne's 5 s connect timeout and were dropped. It runs on the
# consumers' database threads (executor.py), bounded like every holder of a connection.
def _credential_sync(kind: str, value: str) -> tokens.Credential | None:
    return tokens.redeem_ticket(value) if kind == "ticket" else tokens.check(value)


_check_credential = db_call(_credential_sync)


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Is the handshake's Origin this site, or one CSRF_TRUSTED_ORIGINS vouches for?"""
    origin = _header(scope, b"origin")
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return False
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        t = urlsplit(trusted)
        if t.scheme != parts.scheme:
            continue
        if t.netloc == parts.netloc:
            return True
        # Django's syntax for subdomains: https://*.example.com
        if t.netloc.startswith("*.") and parts.netloc.endswith(t.netloc[1:]):
            return True
    host = _header(scope, b"host")
    if not host or host.lower() != parts.netloc.lower():
        return False
    domain, _port = split_domain_port(parts.netloc)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


async def _user_for_session(scope: dict[str, Any]) -> tuple[Any, str | None]:
    """The session cookie's user and the session's key (AnonymousUser, None: no session)."""
    raw = _header(scope, b"cookie")
    if not raw:
        return AnonymousUser(), None
    cookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:  # a malformed Cookie header is just no session
        return AnonymousUser(), None
    morsel = cookie.get(settings.SESSION_COOKIE_NAME)
    if morsel is None or not morsel.value:
        return AnonymousUser(), None
    engine = import_module(settings.SESSION_ENGINE)
    # channels.auth.get_user does what Django's login machinery does: loads the user and checks
    # the session's auth hash, so a password change logs sockets out like pages.
    session = engine.SessionStore(morsel.value)
    return await get_user({"session": session}), session.session_key


class _WebSocketAuth(BaseMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        user: Any = AnonymousUser()
        method: str | None = None
        digest: str | None = None
        session_key: str | None = None
        given = _credential_from(scope)
        if given is not None:
            credential = await _check_credential(*given)
            if credential is not None:
                user, method, digest = credential.user, given[0], credential.token_digest
                session_key = credential.session_key
        elif origin_allowed(scope):
            user, session_key = await _user_for_session(scope)
            method = "session" if user.is_authenticated else None
        scope["user"] = user
        scope["auth"] = method
        scope["auth_token"] = digest
        scope["auth_session_key"] = session_key if user.is_authenticated else None
        return await super().__call__(scope, receive, send)


def WebSocketAuthMiddleware(inner: Any) -> Any:  # noqa: N802 (named like Channels' stacks)
    return _WebSocketAuth(inner)
