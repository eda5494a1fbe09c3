"""Log lines: one JSON object each in production, readable text in ``make run``; never a secret.

Every record gets the context of the request or socket it belongs to: ``request_id``, ``user``,
``call_id`` and ``device_id`` where known. The context lives in a context variable, so it
follows a request into the threads Django runs its views in (asgiref copies the context), and a
socket's into its consumer's handlers. Code that knows more binds it: ``with bound(call_id=...)``,
or ``annotate(user=...)`` to add to the context already bound (e.g. once a socket authenticated).

Nothing secret reaches a line: the formatters scrub query strings, ``token=``-like parameters and
``Authorization`` values from the message and from exception text (``scrub``). That is a safety
net: the access lines (callsite/middleware.py, callsite/ws_observe.py) log paths without their
query in the first place, and Daphne's own access log, which prints full URLs, is off.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.utils.functional import SimpleLazyObject, empty

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "callsite_log_context", default=None
)

FIELDS = ("request_id", "user", "call_id", "device_id")


def bind(**fields: Any) -> contextvars.Token:
    """Start a context (a request, a socket) on top of the current one; ``reset`` ends it."""
    current = _context.get() or {}
    return _context.set({**current, **fields})


def reset(token: contextvars.Token) -> None:
    _context.reset(token)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


def annotate(**fields: Any) -> None:
    """Add to the context already bound, in place: seen by every task and thread sharing it."""
    current = _context.get()
    if current is None:
        _context.set(dict(fields))
    else:
        current.update(fields)


def _username(user: Any) -> str | None:
    if isinstance(user, SimpleLazyObject):
        # Never resolve a lazy user here: that is a database query, maybe on the event loop.
        user = user._wrapped  # type: ignore[attr-defined]
        if user is empty:
            return None
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.get_username())


def context_fields() -> dict[str, Any]:
    """The context of the current request or socket, resolved to plain values."""
    ctx = _context.get()
    if not ctx:
        return {}
    fields = {k: ctx[k] for k in FIELDS if ctx.get(k) is not None}
    request = ctx.get("request")
    if request is not None:
        if "user" not in fields:
            # DRF's authentication sets request.user on the Django request too.
            name = _username(request.__dict__.get("user"))
            if name:
                fields["user"] = name
        match = getattr(request, "resolver_match", None)
        if match is not None and "call_id" not in fields and match.kwargs.get("call_id"):
            fields["call_id"] = match.kwargs["call_id"]
    return fields


# --- scrubbing -------------------------------------------------------------------------------

_SECRET_PARAM = re.compile(
    r"(?i)\b((?:access_)?token|key|secret|password|passwd|auth|signature|credential)"
    r"(\s*[=:]\s*)(\"?)[^\s&\"',;]+"
)
_AUTH_HEADER = re.compile(r"(?i)\b(token|bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{16,}")
# A path followed by a query string: keep the path only.
_QUERY = re.compile(r"((?:^|[\s\"'(=])(?:[a-z][a-z0-9+.-]*://[^\s/\"']+)?/[^\s?\"']*)\?[^\s\"')]*")


def scrub(text: str) -> str:
    text = _QUERY.sub(r"\1", text)
    text = _AUTH_HEADER.sub(r"\1\2[redacted]", text)
    return _SECRET_PARAM.sub(r"\1\2\3[redacted]", text)


# --- formatting ------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else came through ``extra=`` and is worth a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# Extras that are objects, not facts: django.request passes the request (its context is bound).
_NOT_FIELDS = {"request", "scope", "context"}


class ContextFilter(logging.Filter):
    """Puts the request/socket context on each record (``extra=`` given by the caller wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in context_fields().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key in _NOT_FIELDS or key.startswith("_") or value is None:
                continue
            # Anything but a number goes through scrub as text: the repr of an object (Django
            # passes the request) can hold a whole URL.
            keep = isinstance(value, int | float) and not isinstance(value, bool)
            line[key] = value if keep or isinstance(value, bool) else scrub(str(value))
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For people at a terminal: ``12:00:01 INFO callsite.access [user=alice] GET /api/ 200``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        shown = [f"{k}={getattr(record, k)}" for k in FIELDS if getattr(record, k, None)]
        record.context = f" [{' '.join(shown)}]" if shown else ""
        return scrub(super().format(record))
