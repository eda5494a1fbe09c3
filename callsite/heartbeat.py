"""The timer worker's heartbeat: proof, for readiness, that some timer worker is running.

Every timer worker writes the time to the cache each time it reads the pending deadlines (at
start and every ``TIMER_RESCAN_SECONDS``); ``GET /readyz`` reads it back. Older than twice the
rescan interval means no worker has been seen: nothing would ever time out, so the server is
not ready, and the log says why.

The cache is the one the processes share: Redis in production (``REDIS_URL``), and in the
embedded default the server's own memory, where the timer worker runs in the same process.
With several workers, whichever beat last counts: one live worker is enough.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

KEY = "callsite:timers:heartbeat"


def beat() -> None:
    """Record that a timer worker is alive now (sync; called from the worker's rescan thread)."""
    try:
        cache.set(KEY, time.time(), timeout=None)
    except Exception:  # the heartbeat must never stop the timers themselves
        logger.exception("could not record the timer worker heartbeat")


def stale_after() -> float:
    return 2 * float(settings.CALLSITE["TIMER_RESCAN_SECONDS"])


def problem() -> str | None:
    """Why the timers are not known to run, or None when a worker beat recently (sync)."""
    last = cache.get(KEY)
    if last is None:
        return "no timer worker has ever been seen (is `manage.py runworker call-timers` running?)"
    age = time.time() - float(last)
    if age > stale_after():
        return (
            f"no timer worker seen for {age:.0f} s (limit {stale_after():.0f} s, twice "
            "CALLSITE_TIMER_RESCAN): is `manage.py runworker call-timers` running?"
        )
    return None
