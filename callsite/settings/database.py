"""The database: SQLite by default, DATABASE_URL for PostgreSQL (pooled), and the threads that
hold connections."""

from __future__ import annotations

import os
from typing import Any

import dj_database_url

from .env import VAR_DIR, env_bool

# The threads of one process that hold a database connection at the same time: the HTTP
# requests BoundedHTTP lets in (callsite/asgi.py), the WebSocket consumers' database executor
# (invitations/realtime/executor.py) and the timer worker's concurrent expiries (timers.py).
HTTP_CONCURRENCY = int(os.environ.get("CALLSITE_HTTP_CONCURRENCY", "8"))
WS_DB_THREADS = int(os.environ.get("CALLSITE_WS_DB_THREADS", "4"))
TIMER_CONCURRENCY = int(os.environ.get("CALLSITE_TIMER_CONCURRENCY", "4"))
# The interpreter's GIL switch interval in a server process, in ms (Python's default: 5). Every
# hand-off between a request or socket thread and the event loop waits for the GIL; with a dozen
# threads that wait is what a loaded server spends its time in (callsite/asgi.py, issue 9).
# 1 ms won in every paired run of the quick bench (bench/README.md, "Issue 9, second round");
# 0 keeps Python's default.
SWITCH_INTERVAL_MS = float(os.environ.get("CALLSITE_SWITCH_INTERVAL_MS", "1")) or None

DATABASE_URL = os.environ.get("DATABASE_URL", "")


def sqlite_database(path: str) -> dict[str, Any]:
    """The project's SQLite set-up, whichever way the file was named (SQLITE_PATH or a URL)."""
    return {
        # Django's SQLite backend plus an in-process queue for writers (see the module).
        "ENGINE": "callsite.db.sqlite3",
        "NAME": path,
        "OPTIONS": {
            # IMMEDIATE takes the write lock when a transaction starts, so two racing
            # transactions serialise instead of failing to upgrade a read lock.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;"
            ),
        },
        "TEST": {"NAME": os.environ.get("SQLITE_TEST_PATH") or None},
        # Kept by the long-lived request and socket threads (callsite/handlers.py, realtime/
        # executor.py) instead of opened per request: opening one, with its PRAGMAs, was 8% of
        # an invitation's CPU (py-spy, issue 9). Checked before reuse, closed after an error.
        "CONN_MAX_AGE": int(os.environ.get("SQLITE_CONN_MAX_AGE", "600")),
        "CONN_HEALTH_CHECKS": True,
    }


if DATABASE_URL.startswith("sqlite:"):
    # dj_database_url would pick Django's stock backend: deferred transactions and no writer
    # queue, so two racing answers to one call each failed with "database is locked" (issue 11).
    DATABASES: dict[str, dict[str, Any]] = {
        "default": sqlite_database(str(dj_database_url.parse(DATABASE_URL)["NAME"]))
    }
elif DATABASE_URL:
    # CONN_MAX_AGE 0: under ASGI each request runs in a thread of its own (ThreadSensitiveContext),
    # so a kept connection is never reused and stays open until its thread is collected; under
    # load that ran PostgreSQL out of connections ("too many clients", bench/ in issue 5).
    DATABASES = {"default": dict(dj_database_url.parse(DATABASE_URL, conn_max_age=0))}
    DATABASES["default"].setdefault("TEST", {})
    POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with timestamps parsed by psycopg's C loader (see the module).
        DATABASES["default"]["ENGINE"] = "callsite.db.postgresql"
    if POSTGRES and env_bool("CALLSITE_DB_POOL", True):
        # So connections are reused anyway: a thread's "close" hands its connection back to
        # psycopg's pool (Django 5.1+) instead of ending it, and the next request's thread takes
        # it, skipping PostgreSQL's fork and authentication. Sized to every thread that may hold
        # one at once (above), plus two for management work (startup, the presence sweep), so a
        # thread never waits for a connection; the timeout only bounds a wait if that is wrong.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2,
            "max_size": HTTP_CONCURRENCY + WS_DB_THREADS + TIMER_CONCURRENCY + 2,
            "timeout": float(os.environ.get("CALLSITE_DB_POOL_TIMEOUT", "10")),
        }
    if POSTGRES and env_bool("CALLSITE_DB_SERVER_BINDING", True):
        # Parameters go to PostgreSQL beside the statement instead of being quoted into it by
        # psycopg in Python, and a statement run 5 times on a connection is prepared there, so
        # PostgreSQL stops parsing and planning the same few statements of every invitation
        # (Django's default turns both off). Production's invite p50 0.87x, PostgreSQL's CPU in
        # the full call cycles 0.79x (bench/README.md, "Issue 9, ninth round").
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            server_side_binding=True, prepare_threshold=5
        )
    if os.environ.get("DATABASE_POOLER", "").strip().lower() == "transaction":
        # PgBouncer in transaction mode hands each transaction any server connection: no
        # server-side cursors, and no prepared statements (psycopg prepares a query after 5 runs).
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
    if os.environ.get("TEST_DATABASE_NAME"):
        DATABASES["default"]["TEST"]["NAME"] = os.environ["TEST_DATABASE_NAME"]
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": sqlite_database(os.environ.get("SQLITE_PATH", str(VAR_DIR / "callsite.sqlite3")))
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
