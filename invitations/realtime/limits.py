"""Per-user and per-socket limits of /ws/ (API.md "Limits"; settings in CALLSITE).

- Sockets per user (``MAX_SOCKETS_PER_USER``, 10): counted from the presence rows every server
  process shares, so the limit holds across processes; the 11th socket is closed with 4429.
  The count and the new socket's row are one step, under the user's lock in the transaction
  that registers it (``realtime/devices.py``, ``device_connected``), so connects racing on
  several threads or processes never get past the limit together.
- Messages per socket: a token bucket (``WS_RATE`` 20/s sustained, ``WS_BURST`` 100). A message
  over budget is dropped and answered with an ``error`` ``throttled`` (at most one a second); a
  socket still over budget ``WS_FLOOD_SECONDS`` (10 s) after it first went over is closed with
  4429. A second without a drop ends the flood.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from django.conf import settings

CLOSE_TOO_MANY = 4429


class TooManySocketsError(Exception):
    """The user already holds ``max_sockets()`` fresh sockets: this one is not registered."""


def max_sockets() -> int:
    return int(settings.CALLSITE["MAX_SOCKETS_PER_USER"])


class Verdict(enum.Enum):
    OK = "ok"
    DROP = "drop"  # over budget: drop it silently (already told within the last second)
    DROP_AND_TELL = "drop_and_tell"  # over budget: drop it and send `throttled`
    CLOSE = "close"  # over budget for too long: close with 4429


class MessageBudget:
    def __init__(
        self,
        *,
        rate: float | None = None,
        burst: int | None = None,
        flood_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        cfg = settings.CALLSITE
        self.rate = float(cfg["WS_RATE"] if rate is None else rate)
        self.burst = float(cfg["WS_BURST"] if burst is None else burst)
        self.flood_seconds = float(
            cfg["WS_FLOOD_SECONDS"] if flood_seconds is None else flood_seconds
        )
        self.clock = clock
        self.tokens = self.burst
        self.updated = clock()
        self.flooding_since: float | None = None
        self.last_drop = float("-inf")
        self.last_told = float("-inf")

    def take(self) -> Verdict:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if now - self.last_drop > 1.0:
            self.flooding_since = None  # a second without a drop: the flood is over
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return Verdict.OK
        if self.flooding_since is None:
            self.flooding_since = now
        self.last_drop = now
        if now - self.flooding_since >= self.flood_seconds:
            return Verdict.CLOSE
        if now - self.last_told >= 1.0:
            self.last_told = now
            return Verdict.DROP_AND_TELL
        return Verdict.DROP
