"""The WebSocket consumers' database calls, on a small fixed thread pool of their own.

``channels.db.database_sync_to_async`` runs every call on the process's one shared sync
thread: every socket's ack, relay lookup and snapshot then waits in a single line, behind the
others' transactions. These threads run them side by side instead, a bounded few (settings
``CALLSITE["WS_DB_THREADS"]``, counted in the PostgreSQL pool's size), and close stale
connections before and after each call exactly as ``database_sync_to_async`` does, so a
thread never keeps a broken or expired connection.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:  # created lazily: settings are only readable once Django is set up
        _executor = ThreadPoolExecutor(
            max_workers=max(1, int(settings.CALLSITE["WS_DB_THREADS"])),
            thread_name_prefix="ws-db",
        )
    return _executor


def db_call(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``database_sync_to_async(func)``, but on the consumers' own threads."""

    @functools.wraps(func)
    def closing(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    @functools.wraps(func)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return await sync_to_async(closing, thread_sensitive=False, executor=_pool())(
            *args, **kwargs
        )

    return run
