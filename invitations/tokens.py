"""API tokens (one per device, hashed, expiring) and WebSocket tickets: issue, check, revoke.

Tokens are django-rest-knox's ``AuthToken`` rows: a SHA-512 of the token is stored, never the
token, and each expires ``REST_KNOX["TOKEN_TTL"]`` (30 days) after its last use. Which device holds
a token is ``TokenDevice``. Anything that revokes credentials (this module, a password change, a
deactivation; see ``signals.py``) is picked up by the sockets' periodic re-check
(``realtime/revocation.py``), which closes them with 4401.

Browser sessions: a socket opened with the session cookie, or with a ticket the session asked
for, remembers the session's key; once the session is gone (logout, expiry, deleted by an
operator) the same re-check closes it (``live_sessions``).

Tickets are for ``/ws/?ticket=``: a URL ends up in proxy logs, so what goes there should be worth
nothing a moment later. A ticket is a random string valid ``WS_TICKET_SECONDS`` (30) for one
socket, kept in the cache (Redis in production, shared by every process; per-process memory in
the one-process embedded default).
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from hmac import compare_digest
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS, knox_settings

from . import validation
from .models import TokenDevice
from .sql import Columns, columns, field, from_db, table


@dataclass(frozen=True)
class Credential:
    """Who a token or ticket belongs to, and which token (None for a browser session)."""

    user: Any
    token_digest: str | None
    session_key: str | None = None  # the browser session that asked for the ticket, if one did


def ttl() -> timedelta:
    value: timedelta = knox_settings.TOKEN_TTL
    return value


def issue(*, user: User, device_id: str = "") -> tuple[str, datetime]:
    """A new token for this device of the user (replacing the device's previous one)."""
    with transaction.atomic():
        if device_id:
            AuthToken.objects.filter(user=user, device__device_id=device_id).delete()
        instance, token = AuthToken.objects.create(user=user, expiry=ttl())
        TokenDevice.objects.create(token=instance, user=user, device_id=device_id)
        keep = settings.CALLSITE["MAX_TOKENS_PER_USER"]
        stale = (
            AuthToken.objects.filter(user=user)
            .order_by("-created")
            .values_list("digest", flat=True)[keep:]
        )
        AuthToken.objects.filter(digest__in=list(stale)).delete()
    return token, instance.expiry


def import_keys(pairs: Iterable[tuple[User, str]], *, device_id: str = "") -> int:
    """Store tokens whose keys the caller chose (old DRF keys, benchmark fixtures), hashed."""
    expiry = timezone.now() + ttl()
    rows = [
        AuthToken(
            digest=hash_token(key),
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
            user=user,
            expiry=expiry,
        )
        for user, key in pairs
    ]
    AuthToken.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    TokenDevice.objects.bulk_create(
        [TokenDevice(token_id=r.digest, user=r.user, device_id=device_id) for r in rows],
        batch_size=1000,
        ignore_conflicts=True,
    )
    return len(rows)


def check(key: str) -> Credential | None:
    """The active user a token belongs to, or None (unknown, expired, inactive). Renews it.

    Every REST request and every token-authenticated socket asks this first, so the token
    and its user are read with one plain statement (``_token_sql``): through the ORM (a
    ``select_related`` query compiled per call, then two model instances) the check took
    0.42 ms of CPU on SQLite, the statement itself 0.03 ms (issue 9). The user is still a full
    instance, its columns converted by the same converters the ORM applies.
    """
    if not key or len(key) > 200 or not validation.storable(key):
        return None
    try:
        digest = hash_token(key)
    except (TypeError, ValueError, binascii.Error):
        return None
    now = timezone.now()
    sql, expiry_field, user_columns = _token_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [key[: CONSTANTS.TOKEN_KEY_LENGTH]])
        rows = cursor.fetchall()
    for row_digest, raw_expiry, *raw_user in rows:
        if not compare_digest(digest, row_digest):
            continue
        expiry = from_db(expiry_field, raw_expiry)
        if expiry is not None and expiry < now:
            revoke(digest=row_digest)
            return None
        user = user_columns.instance(raw_user)
        if not user.is_active:
            return None
        _renew(row_digest, expiry)
        return Credential(user=user, token_digest=row_digest)
    return None


def _renew(digest: str, expiry: datetime | None) -> None:
    """Push the expiry out on use; written at most once per MIN_REFRESH_INTERVAL."""
    if expiry is None:
        return
    new_expiry = timezone.now() + ttl()
    if (new_expiry - expiry).total_seconds() > knox_settings.MIN_REFRESH_INTERVAL:
        AuthToken.objects.filter(digest=digest).update(expiry=new_expiry)


@functools.cache
def _token_sql() -> tuple[str, Field, Columns]:
    """The tokens with a key's prefix, each with every column of its user (any user model)."""
    user_model = get_user_model()
    quote = connection.ops.quote_name
    token_user = field(AuthToken, "user")
    user_columns = columns(user_model, "u")
    sql = (
        f"SELECT t.{quote('digest')}, t.{quote('expiry')}, {user_columns.sql}"
        f" FROM {table(AuthToken)} t INNER JOIN {table(user_model)} u"
        f" ON u.{quote(user_model._meta.pk.column)} = t.{quote(token_user.column)}"
        f" WHERE t.{quote('token_key')} = %s"
    )
    return sql, field(AuthToken, "expiry"), user_columns


def revoke(*, digest: str) -> None:
    AuthToken.objects.filter(digest=digest).delete()


def revoke_all(*, user: User) -> int:
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return int(deleted)


def live_digests(digests: Iterable[str]) -> set[str]:
    """Which of these tokens still exist and have not expired."""
    wanted = list(set(digests))
    alive: set[str] = set()
    now = timezone.now()
    for i in range(0, len(wanted), 500):
        alive.update(
            AuthToken.objects.filter(digest__in=wanted[i : i + 500])
            .exclude(expiry__lt=now)
            .values_list("digest", flat=True)
        )
    return alive


def live_sessions(keys: Iterable[str]) -> set[str]:
    """Which of these browser sessions still exist and have not expired (a logout deletes one).

    The database engines (``db``, ``cached_db``: the database is the truth for both) answer in one
    query per 500; other server-side engines key by key. Signed-cookie sessions live only in the
    browser, so the server cannot see a logout: they count as alive.
    """
    wanted = list({k for k in keys if k})
    if not wanted:
        return set()
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if settings.SESSION_ENGINE.endswith("signed_cookies"):
        return set(wanted)
    get_model = getattr(store, "get_model_class", None)
    if get_model is None:
        return {k for k in wanted if store().exists(k)}
    model = get_model()
    alive: set[str] = set()
    now = timezone.now()
    for i in range(0, len(wanted), 500):
        alive.update(
            model.objects.filter(
                session_key__in=wanted[i : i + 500], expire_date__gt=now
            ).values_list("session_key", flat=True)
        )
    return alive


# --- WebSocket tickets ------------------------------------------------------------------------


def _ticket_key(ticket: str) -> str:
    return "ws-ticket:" + hashlib.sha256(ticket.encode("utf-8", "surrogatepass")).hexdigest()


def issue_ticket(
    *, user: User, token_digest: str | None, session_key: str | None = None
) -> tuple[str, datetime]:
    """A ticket standing for the token, or the browser session, that asked for it."""
    seconds = settings.CALLSITE["WS_TICKET_SECONDS"]
    ticket = secrets.token_urlsafe(32)
    cache.set(
        _ticket_key(ticket),
        {"user": user.pk, "token": token_digest, "session": session_key},
        timeout=seconds,
    )
    return ticket, timezone.now() + timedelta(seconds=seconds)


def redeem_ticket(ticket: str) -> Credential | None:
    """The ticket's credential, once: the cache's delete decides which of two racers wins."""
    if not ticket or len(ticket) > 100:
        return None
    key = _ticket_key(ticket)
    data = cache.get(key)
    if not data or not cache.delete(key):
        return None
    user = get_user_model().objects.filter(pk=data["user"], is_active=True).first()
    if user is None:
        return None
    if data["token"] is not None and not live_digests([data["token"]]):
        return None  # the token that asked for it was revoked meanwhile
    session_key = data.get("session")
    if session_key is not None and not live_sessions([session_key]):
        return None  # the session that asked for it logged out meanwhile
    return Credential(user=user, token_digest=data["token"], session_key=session_key)
