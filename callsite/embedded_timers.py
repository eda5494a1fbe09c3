"""The timer worker of the embedded default runs inside whichever ASGI server serves the app.

Issue 11: ``daphne callsite.asgi:application`` with the embedded settings ran no timers at all
(only ``manage.py serve`` started them), so nothing ever timed out and nothing warned. Now the
application starts the worker itself when ``CALLSITE["EMBEDDED_TIMERS"]`` is on (the default
without ``REDIS_URL``):

- under Daphne (``manage.py serve`` or plain ``daphne``), when Twisted's reactor starts;
- under servers that speak the ASGI lifespan protocol (Uvicorn, Hypercorn), at its startup.

With Redis the timers belong to ``manage.py runworker call-timers``, and readiness fails (naming
the timers) while no worker's heartbeat is recent (callsite/heartbeat.py).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

_task: asyncio.Future[Any] | None = None


def enabled() -> bool:
    return bool(settings.CALLSITE["EMBEDDED_TIMERS"])


def start() -> None:
    """Start the worker on the running loop, once per process."""
    global _task
    if _task is not None and not _task.done():
        return
    from invitations.timers import run_embedded_worker

    _task = asyncio.ensure_future(run_embedded_worker())
    logger.info("timer worker running inside this server process (embedded default)")


def stop() -> None:
    if _task is not None and not _task.done():
        _task.cancel()


def start_with_daphne() -> None:
    """Under Daphne, start the worker as its reactor starts (the app is loaded before that)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if enabled() and reactor is not None and not reactor.running:
        reactor.callWhenRunning(start)
        graceful = sys.modules.get("callsite.graceful")  # manage.py serve, not plain daphne
        if graceful is not None:
            graceful.on_drain(stop)


class Lifespan:
    """The ``lifespan`` scope: start the worker with the server, stop it with the server."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if enabled():
                    start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
