"""ASGI entry point: HTTP through Django, /ws/ through Channels, and the timer channel."""

import asyncio
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callsite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from callsite import wsbuffer  # noqa: E402
from callsite.bodylimit import RequestBodyLimit  # noqa: E402
from invitations.realtime.routing import websocket_application  # noqa: E402
from invitations.timers import timer_application  # noqa: E402


class BoundedHTTP:
    """Run at most ``limit`` Django requests of this process at once; the others wait here.

    Django runs each request's sync view in a thread of its own with its own database
    connection, so an unbounded burst means as many threads and connections: more than the
    database accepts, and threads fighting over the GIL with the event loop that delivers
    WebSocket frames (bench/README.md, "Notes moved from code comments"). Waiting on the event
    loop costs nothing; a handful of request threads keeps the cores busy.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = max(1, limit)
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan: nothing to bound
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        if self._sem is None or self._loop is not loop:  # one per event loop (tests run several)
            self._sem, self._loop = asyncio.Semaphore(self.limit), loop
        async with self._sem:
            await self.app(scope, receive, send)


# Under Daphne: close clients that stop reading once 1 MiB waits for them (callsite/wsbuffer.py).
wsbuffer.install(settings.CALLSITE["WS_MAX_UNSENT_BYTES"])

application = ProtocolTypeRouter(
    {
        # The body limit first, so an oversized body never waits for (or holds) a request slot.
        "http": RequestBodyLimit(
            BoundedHTTP(django_asgi_app, settings.CALLSITE["HTTP_CONCURRENCY"]),
            settings.CALLSITE["MAX_REQUEST_BODY_BYTES"],
        ),
        "websocket": websocket_application(),
        "channel": timer_application(),
    }
)
