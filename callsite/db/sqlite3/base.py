"""SQLite, with writers of one process queued on a lock instead of SQLite's busy polling.

The embedded default runs every request and socket in a thread of its own. SQLite lets one
writer in at a time and makes the others poll with growing sleeps (up to 100 ms each), which is
unfair: under a burst some writers wait past the busy timeout and fail with "database is locked"
while others get in repeatedly. Taking a process-wide lock before ``BEGIN IMMEDIATE`` makes the
writers of this process wait in line and wake the moment the previous one commits. Other
processes (a ``manage.py`` command beside the server) still meet SQLite's own busy timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import OperationalError
from django.db.backends.sqlite3 import base

_WRITE_LOCK = threading.Lock()


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_write_lock = False

    def _start_transaction_under_autocommit(self) -> None:
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 20))
        if not _WRITE_LOCK.acquire(timeout=timeout):
            raise OperationalError("database is locked (waited for other writers)")
        self._holds_write_lock = True
        try:
            # Private Django API (as are _commit, _rollback, _close): django-stubs declares none.
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._release_write_lock()
            raise

    def _release_write_lock(self) -> None:
        if self._holds_write_lock:
            self._holds_write_lock = False
            _WRITE_LOCK.release()

    # Private Django API (as is _start_transaction_under_autocommit): django-stubs declares none.
    def _commit(self) -> Any:
        return self._then_release(super()._commit)  # type: ignore[misc]

    def _rollback(self) -> Any:
        return self._then_release(super()._rollback)  # type: ignore[misc]

    def _close(self) -> Any:
        return self._then_release(super()._close)  # type: ignore[misc]

    def _then_release(self, end: Callable[[], Any]) -> Any:
        """End the transaction (or the connection), then let this process' next writer in."""
        try:
            return end()
        finally:
            self._release_write_lock()
