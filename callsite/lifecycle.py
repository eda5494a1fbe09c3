"""Where this process is in its life: serving, draining (shutting down), or stopped.

Set by the graceful shutdown of ``manage.py serve`` (callsite/graceful.py) and read by code that
must behave differently then, without importing Daphne or Twisted:

- ``draining()``: a shutdown started. Sockets closing now are moving to another process, so
  their devices and calls stay as they are in the database (they resume via session.ready).
- ``publishing_allowed()``: false once the event loop is stopping; a publish handed to it
  then would never run, and the thread waiting for it would never return.
- ``on_release(hook)``: work to do once the sockets and requests are drained and before the loop
  stops (the process' device rows: realtime/devices.py), each bounded by the shutdown's deadline.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

_draining = False
_stopped = False


def draining() -> bool:
    return _draining


def publishing_allowed() -> bool:
    return not _stopped


def start_draining() -> None:
    global _draining
    _draining = True


def mark_stopped() -> None:
    global _stopped
    _stopped = True


_release_hooks: list[Callable[[float], Awaitable[Any]]] = []


def on_release(hook: Callable[[float], Awaitable[Any]]) -> None:
    """Run ``await hook(deadline)`` (deadline: ``time.monotonic()``) at the end of a drain."""
    if hook not in _release_hooks:
        _release_hooks.append(hook)


async def release(deadline: float) -> None:
    """Run the release hooks; each starts no new piece of work after ``deadline`` (the caller
    stops waiting for them a little later). A failing hook stops no other."""
    for hook in list(_release_hooks):
        if time.monotonic() >= deadline:
            logger.warning("no time left for %r at shutdown", hook)
            continue
        try:
            await hook(deadline)
        except Exception:
            logger.exception("release hook %r failed", hook)


def exit_after(seconds: float) -> None:
    """End the process ``seconds`` from now if it has not exited by then (a shutdown's last word).

    A thread stuck in a database call or waiting on a stopped loop would otherwise keep the
    interpreter from exiting until the service manager's SIGKILL.
    """

    def watch() -> None:
        time.sleep(seconds)
        logger.error("still running %.1f s after the signal: exiting now", seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(0)

    threading.Thread(target=watch, name="shutdown-watchdog", daemon=True).start()
