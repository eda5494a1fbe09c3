"""The server's garbage collector: full collections walk what is new, not every socket.

CPython's full collection walks every object the collector tracks: about 177,000 in a server
holding 1,000 sockets (each socket's protocol, consumer, tasks and queues), ten times that at
10,000, where each full collection paused the event loop for 1.1-1.4 s; while sockets connect,
one came every few seconds (issue 9, bench/README.md). Nearly all of those objects live as long
as their socket, and none of them needs the collector: requests and sockets leave no reference
cycles behind (callsite/cycles.py, callsite/server.py; tests/test_request_garbage.py,
tests/test_socket_garbage.py).

So every ``GC_FREEZE_SECONDS`` the server collects everything not yet frozen (cheap: only what
is new since the last time) and freezes what survived (``gc.freeze``). A frozen object is still
freed the moment its last reference goes; only a frozen object that becomes part of a garbage
cycle would wait, and for that, every ``GC_UNFREEZE_SECONDS`` everything is handed back and the
next collection is a full one: one long pause an hour, by default, instead of one every few
seconds.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Collector:
    def __init__(self, unfreeze_every: float) -> None:
        self.unfreeze_every = unfreeze_every
        self.unfrozen_at = time.monotonic()

    def tick(self, now: float | None = None) -> None:
        """Collect what is not frozen, then freeze the survivors (and, when due, thaw first)."""
        now = time.monotonic() if now is None else now
        if self.unfreeze_every and now - self.unfrozen_at >= self.unfreeze_every:
            self.unfrozen_at = now
            gc.unfreeze()  # the collection below walks everything, once
            started = time.perf_counter()
            gc.collect()
            logger.info("full garbage collection: %.0f ms", (time.perf_counter() - started) * 1000)
        else:
            gc.collect()
        gc.freeze()


def start(call_later: Callable[..., object], freeze_every: float, unfreeze_every: float) -> bool:
    """Run the collector's ticks with ``call_later(delay, fn)`` (the reactor's); False if off."""
    if not freeze_every:
        return False
    collector = Collector(unfreeze_every)

    def tick() -> None:
        try:
            collector.tick()
        finally:
            call_later(freeze_every, tick)

    call_later(freeze_every, tick)
    return True
