"""ASGI entry point: HTTP through Django, /ws/ through Channels, and the timer channel."""

import asyncio
import json
import os
import sys
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callsite.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, with our handler below

from callsite.handlers import SyncChainASGIHandler  # noqa: E402

django_asgi_app = SyncChainASGIHandler()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from callsite import direct_write, embedded_timers, wsbuffer  # noqa: E402
from callsite.bodylimit import RequestBodyLimit  # noqa: E402
from callsite.middleware import QUIET_PATHS  # noqa: E402
from callsite.ws_observe import ObservedWebSocket  # noqa: E402
from invitations.realtime.routing import websocket_application  # noqa: E402
from invitations.timers import timer_application  # noqa: E402

# API.md's error envelope for a request the process had no room for (503 + Retry-After).
OVERLOADED_BODY = json.dumps(
    {"error": {"code": "overloaded", "message": "The server is busy; retry in a moment."}}
).encode()


class BoundedHTTP:
    """Run at most ``limit`` Django requests of this process at once; the others wait here.

    Django runs each request's sync view in a thread of its own with its own database
    connection, so an unbounded burst means as many threads and connections: more than the
    database accepts, and threads fighting over the GIL with the event loop that delivers
    WebSocket frames (bench/README.md, "Notes moved from code comments"). Waiting on the event
    loop costs nothing; a handful of request threads keeps the cores busy. But a wait must end:
    past ``max_wait`` seconds the request is answered 503 with Retry-After at once, so under
    overload clients get a quick answer instead of a queue that only grows.
    """

    def __init__(self, app: Any, limit: int, max_wait: float = 5.0) -> None:
        self.app = app
        self.limit = max(1, limit)
        self.max_wait = max_wait
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Lifespan: nothing to bound. Probes and scrapes are async views with no request
        # thread: queued behind slow requests, a busy process would look dead to its balancer.
        if scope["type"] != "http" or scope["path"] in QUIET_PATHS:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        if self._sem is None or self._loop is not loop:  # one per event loop (tests run several)
            self._sem, self._loop = asyncio.Semaphore(self.limit), loop
        sem = self._sem
        try:
            await asyncio.wait_for(sem.acquire(), timeout=self.max_wait)
        except TimeoutError:
            await _overloaded(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            sem.release()


async def _overloaded(send: Any) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", b"1"),
        (b"content-length", str(len(OVERLOADED_BODY)).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": OVERLOADED_BODY})


if settings.SWITCH_INTERVAL_MS:
    sys.setswitchinterval(settings.SWITCH_INTERVAL_MS / 1000)

# Under Daphne: close clients that stop reading once 1 MiB waits for them (callsite/wsbuffer.py).
wsbuffer.install(settings.CALLSITE["WS_MAX_UNSENT_BYTES"])
# Under Daphne: a frame or response goes to the socket at once (callsite/direct_write.py).
direct_write.install()

application = ProtocolTypeRouter(
    {
        # The body limit first, so an oversized body never waits for (or holds) a request slot.
        "http": RequestBodyLimit(
            BoundedHTTP(
                django_asgi_app,
                settings.CALLSITE["HTTP_CONCURRENCY"],
                settings.CALLSITE["HTTP_QUEUE_WAIT"],
            ),
            settings.CALLSITE["MAX_REQUEST_BODY_BYTES"],
        ),
        "websocket": ObservedWebSocket(websocket_application()),
        "channel": timer_application(),
        "lifespan": embedded_timers.Lifespan(),
    }
)

# The embedded default's timer worker, in this process, whichever server runs it.
embedded_timers.start_with_daphne()
