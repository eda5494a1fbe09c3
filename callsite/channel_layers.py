"""The in-memory channel layer of the embedded default, without its quadratic cost.

Channels' ``InMemoryChannelLayer`` walks every channel queue and every group membership on each
``receive``, to drop expired messages and memberships. Every socket has a consumer waiting in
``receive``, so each delivered message costs time proportional to the number of open sockets, and
delivery slows down quadratically as devices connect (bench/README.md, "Notes moved from code
comments"). Expiry only needs to happen eventually, so this subclass sweeps at most once a second.
"""

from __future__ import annotations

import time

from channels.layers import InMemoryChannelLayer


class ThrottledCleanupInMemoryChannelLayer(InMemoryChannelLayer):
    cleanup_interval = 1.0
    _last_cleanup = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_cleanup < self.cleanup_interval:
            return
        self._last_cleanup = now
        super()._clean_expired()
