"""Every Prometheus metric of callsite, in one place (served by ``GET /metrics``).

Each process (every server, every timer worker) keeps and exposes its own figures in
prometheus-client's default registry; Prometheus scrapes each process and sums across them
(docs/production.md, "Metrics"). Updating a metric is a lock and an addition, cheap enough for
the hot paths that call these.
"""

from __future__ import annotations

import contextvars
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

from django.db.backends.signals import connection_created
from prometheus_client import Counter, Gauge, Histogram

# --- calls ---------------------------------------------------------------------------------

INVITATIONS = Counter(
    "callsite_invitations",
    "Invitations by how they ended for the invitee.",
    # accepted, rejected, cancelled, timeout, busy, ...: the participant states of API.md
    ["outcome"],
)
INVITE_TO_PUBLISH = Histogram(
    "callsite_invite_to_publish_seconds",
    "From the start of an invite request to its invitation event handed to the channel layer.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TIMER_LATENESS = Histogram(
    "callsite_timer_lateness_seconds",
    "How long after its deadline a timer fired (expired an invitation or an offline call).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)

# When the HTTP request being served started (time.perf_counter), set by the middleware.
REQUEST_STARTED: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "callsite_request_started", default=None
)

# A participant state that ends an invitation, as call.user_state_changed reports it.
OUTCOMES = frozenset({"accepted", "rejected", "cancelled", "timeout"})


def count_outcomes(events: Iterable[dict[str, Any]]) -> None:
    """Count the invitations these published events end (one event per participant move)."""
    for event in events:
        state = event.get("state")
        if event.get("type") == "call.user_state_changed" and state in OUTCOMES:
            busy = state == "rejected" and event.get("reason") == "busy"
            INVITATIONS.labels(outcome="busy" if busy else state).inc()


def invitation_published() -> None:
    """An invitation event reached the channel layer: time it from its request's start."""
    started = REQUEST_STARTED.get()
    if started is not None:  # a request's, not a timer's or a shell's
        INVITE_TO_PUBLISH.observe(time.perf_counter() - started)


# --- sockets and the channel layer -----------------------------------------------------------

SOCKETS_OPEN = Gauge("callsite_websockets_open", "WebSockets accepted and still open.")
WS_MESSAGES = Counter(
    "callsite_websocket_messages",
    "WebSocket frames by direction: in from devices, out to devices.",
    ["direction"],
)
LAYER_DROPPED = Counter(
    "callsite_channel_layer_dropped",
    "Messages the channel layer dropped instead of delivering.",
    ["reason"],  # full: the receiver's queue was at capacity; expired: it waited too long
)
LAYER_SEND_FAILURES = Counter(
    "callsite_channel_layer_send_failures",
    "send or group_send calls that raised (the layer unreachable, a channel full, ...).",
    ["operation", "error"],
)

# --- HTTP and the database -------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "callsite_http_requests",
    "HTTP requests answered, by view (URL name), method and status.",
    ["view", "method", "status"],
)
HTTP_DURATION = Histogram(
    "callsite_http_request_duration_seconds",
    "Time spent answering an HTTP request, by view.",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_connections: weakref.WeakSet[Any] = weakref.WeakSet()
_connections_lock = threading.Lock()


def _track_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    with _connections_lock:
        _connections.add(connection)


def db_connections_in_use() -> int:
    """Database connections this process holds open right now.

    Django keeps one connection object per thread. On PostgreSQL (CONN_MAX_AGE 0 and the pool) a
    connection is open only while a request, socket handler or timer batch uses it, so open
    means in use; on SQLite the long-lived request and socket threads keep theirs open between
    uses (callsite/settings/database.py), so there it counts those threads' connections. The
    objects die with their threads, hence a weak set.
    """
    with _connections_lock:
        wrappers = list(_connections)
    return sum(1 for w in wrappers if getattr(w, "connection", None) is not None)


connection_created.connect(_track_connection, dispatch_uid="callsite.metrics")
DB_CONNECTIONS = Gauge(
    "callsite_db_connections_in_use", "Database connections this process holds open."
)
DB_CONNECTIONS.set_function(db_connections_in_use)
