"""Django's ASGI handler, with the whole request (middleware and view) in one thread hop.

Django runs a sync middleware stack under ASGI by hopping from the event loop to a thread and
back for every hook of every middleware (``MiddlewareMixin.__acall__``, Django ticket #37177),
and again for each ``process_view`` and for the view: about fifteen hand-offs per request, each
waiting for the loop or for a thread, for middleware and views that are all synchronous. This
handler builds the chain exactly as WSGI does (sync middleware around a sync ``get_response``)
and enters it once, in the request's thread (``thread_sensitive``, as Django does for a sync
view). Async views still work: the sync chain adapts them with ``async_to_sync``.

The chain runs on a fixed pool of long-lived threads, one per request slot (``HTTP_CONCURRENCY``,
which ``BoundedHTTP`` never exceeds), instead of a new thread per request: a thread keeps its
database connection from one request to the next (SQLite's ``CONN_MAX_AGE``; PostgreSQL's pool),
so a request no longer pays for opening one (issue 9). Stale or broken connections are closed
before and after each request, in the thread that holds them, as Django's request signals would.

A finished request leaves no garbage for the cyclic collector (``listen_for_disconnect`` below).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from callsite import cycles


class SyncChainASGIHandler(ASGIHandler):
    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Django's entry point without its per-request ``ThreadSensitiveContext``: that
        context starts a new thread for each request only to run the request signals' receivers
        (close_old_connections and the like), which have nothing to do outside the pool thread
        that holds the connection (``run`` below does that work there). They run on asgiref's
        one shared sync thread instead: a thread start per request was 7% of a request's CPU
        (py-spy, issue 9)."""
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def listen_for_disconnect(self, receive: Any) -> None:
        """Return on ``http.disconnect`` instead of raising ``RequestAborted``.

        Daphne sends ``http.disconnect`` after every response. Django 5.2's ``handle`` re-raises
        the listener's ``RequestAborted`` only to ignore it, and the exception's traceback holds
        ``handle``'s frame, which holds the task, which holds the exception: a reference cycle
        that kept each request's whole object graph (about 130 objects: the request, DRF's
        wrappers, the session, the response, the tasks) alive until the cyclic collector ran,
        and promoted much of it into the oldest generation, whose full collections then paused
        the event loop for 60-150 ms every few seconds at 1,000 sockets (issue 9). ``handle``
        cancels the view on whichever task finishes first and ignores how the listener ended,
        so returning keeps Django 5.2's behaviour (tests/test_request_garbage.py holds both
        halves; Django 6.1 rewrites ``handle``, and the test says so if this no longer holds).
        """
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        # This should never happen (Django's own check).
        raise AssertionError(f"Invalid ASGI message after request body: {message['type']}")

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        chain: Callable[[HttpRequest], HttpResponseBase] = self._middleware_chain  # type: ignore[has-type]
        pool = ThreadPoolExecutor(
            max_workers=max(1, int(settings.CALLSITE["HTTP_CONCURRENCY"])),
            thread_name_prefix="http",
        )

        def run(request: HttpRequest) -> HttpResponseBase:
            close_old_connections()
            try:
                response = chain(request)
                cycles.release(request, response)
                return response
            finally:
                close_old_connections()

        self._middleware_chain = sync_to_async(run, thread_sensitive=False, executor=pool)
