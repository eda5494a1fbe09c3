"""Call invitation limits and the server's own knobs (API.md "Limits"), read as
``settings.CALLSITE[...]``."""

from __future__ import annotations

from typing import Any

from .channel_layer import REDIS_URL
from .database import HTTP_CONCURRENCY, WS_DB_THREADS
from .env import env_bool, env_float, env_int

# Typed as a whole: values are ints, floats and strings, read by key.
CALLSITE: dict[str, Any] = {
    "MAX_INVITEES_PER_REQUEST": env_int("CALLSITE_MAX_INVITEES", 9),
    "MAX_ACTIVE_PARTICIPANTS": env_int("CALLSITE_MAX_PARTICIPANTS", 10),
    "MIN_TIMEOUT": 1,
    "MAX_TIMEOUT": env_int("CALLSITE_MAX_TIMEOUT", 600),
    "DEFAULT_TIMEOUT": env_int("CALLSITE_DEFAULT_TIMEOUT", 60),
    "EXTENDED_DATA_MAX_BYTES": 2048,
    "REASON_MAX_LENGTH": 32,
    "CALLER_OFFLINE_GRACE": env_float("CALLSITE_CALLER_OFFLINE_GRACE", 30),
    # Each server process refreshes its sockets' presence rows this often; rows older than the
    # TTL belong to a dead process and are swept, so its users do not stay online for ever.
    "PRESENCE_HEARTBEAT": env_float("CALLSITE_PRESENCE_HEARTBEAT", 15),
    "PRESENCE_TTL": env_float("CALLSITE_PRESENCE_TTL", 45),
    # A user goes offline for their subscribers only this long after their last socket closed,
    # so a page reload (or a phone switching networks) is no change at all (API.md "Presence").
    "PRESENCE_GRACE": env_float("CALLSITE_PRESENCE_GRACE", 5),
    # Usernames one socket may watch with one presence.subscribe.
    "PRESENCE_SUBSCRIBE_MAX": env_int("CALLSITE_PRESENCE_SUBSCRIBE_MAX", 500),
    # How often the timer worker re-reads pending deadlines from the database, as a safety
    # net for timer.schedule messages the channel layer dropped (delivery is at most once).
    "TIMER_RESCAN_SECONDS": env_float("CALLSITE_TIMER_RESCAN", 30),
    # In the embedded default the timer worker runs inside the server process.
    "EMBEDDED_TIMERS": env_bool("CALLSITE_EMBEDDED_TIMERS", not REDIS_URL),
    # HTTP requests one process runs at once (each in a thread of its own, with its own database
    # connection); the rest wait their turn on the event loop. See callsite/asgi.py.
    "HTTP_CONCURRENCY": HTTP_CONCURRENCY,
    # Seconds a request may wait for one of those places before it is answered 503 (overload).
    "HTTP_QUEUE_WAIT": env_float("CALLSITE_HTTP_QUEUE_WAIT", 5),
    # Threads that run the WebSocket consumers' database calls (invitations/realtime/).
    "WS_DB_THREADS": WS_DB_THREADS,
    # Seconds a WebSocket handshake may wait for the server to accept it (its credential check
    # queues with every other socket's database work). Daphne's own default, 5 s, rejected
    # sockets in a reconnect storm of 2,000 on one process (bench/README.md), and a rejected
    # client reconnects, which only adds to the storm.
    "WS_CONNECT_TIMEOUT": env_int("CALLSITE_WS_CONNECT_TIMEOUT", 30),
    # Expiries the timer worker runs at once; unset: TIMER_CONCURRENCY on PostgreSQL, one on
    # SQLite (a single writer). See invitations/timers.py.
    "TIMER_CONCURRENCY": env_int("CALLSITE_TIMER_CONCURRENCY", 0) or None,
    # Request bodies (any path) and WebSocket frames: larger ones answer 413 / close (API.md).
    "MAX_REQUEST_BODY_BYTES": env_int("CALLSITE_MAX_BODY_BYTES", 64 * 1024),
    # JSON nesting a request body or a frame may have; clients send depth 3 at most. Deeper ones
    # would hit Python's recursion limit (a 500) or msgpack's on the Redis channel layer.
    "MAX_JSON_DEPTH": env_int("CALLSITE_MAX_JSON_DEPTH", 32),
    # Tokens a user may hold at once (one per device); logging in past it drops the oldest.
    "MAX_TOKENS_PER_USER": env_int("CALLSITE_MAX_TOKENS_PER_USER", 20),
    # Sockets (API.md "Limits"): per user; a token bucket of messages per socket, and how long a
    # socket may stay over it before it is closed; output waiting for a client that stopped
    # reading.
    "MAX_SOCKETS_PER_USER": env_int("CALLSITE_MAX_SOCKETS_PER_USER", 10),
    "WS_RATE": env_float("CALLSITE_WS_RATE", 20),
    "WS_BURST": env_int("CALLSITE_WS_BURST", 100),
    "WS_FLOOD_SECONDS": env_float("CALLSITE_WS_FLOOD_SECONDS", 10),
    "WS_MAX_UNSENT_BYTES": env_int("CALLSITE_WS_MAX_BUFFER", 1024 * 1024),
    # WebSocket tickets (POST /api/ws/ticket/): single use, this many seconds.
    "WS_TICKET_SECONDS": env_int("CALLSITE_WS_TICKET_SECONDS", 30),
    # How often each process re-checks its sockets' credentials (revoked token, password
    # changed, user deactivated) and closes those that lost them with 4401.
    "AUTH_RECHECK_SECONDS": env_float("CALLSITE_AUTH_RECHECK_SECONDS", 10),
    # The server's garbage collector (callsite/collector.py): every GC_FREEZE_SECONDS it collects
    # what is new and freezes what survived, so full collections walk only recent objects; every
    # GC_UNFREEZE_SECONDS it hands everything back for one full collection. 0 turns it off.
    "GC_FREEZE_SECONDS": env_float("CALLSITE_GC_FREEZE_SECONDS", 2),
    "GC_UNFREEZE_SECONDS": env_float("CALLSITE_GC_UNFREEZE_SECONDS", 3600),
}

TIMER_CHANNEL = "call-timers"
