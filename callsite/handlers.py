"""Django's ASGI handler, with the whole request (middleware and view) in one thread hop.

Django runs a sync middleware stack under ASGI by hopping from the event loop to a thread and
back for every hook of every middleware (``MiddlewareMixin.__acall__``, Django ticket #37177),
and again for each ``process_view`` and for the view: about fifteen hand-offs per request, each
waiting for the loop or for a thread, for middleware and views that are all synchronous. This
handler builds the chain exactly as WSGI does (sync middleware around a sync ``get_response``)
and enters it once, in the request's thread (``thread_sensitive``, as Django does for a sync
view). Async views still work: the sync chain adapts them with ``async_to_sync``.
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        chain: Callable[[HttpRequest], HttpResponseBase] = self._middleware_chain  # type: ignore[has-type]
        self._middleware_chain = sync_to_async(chain, thread_sensitive=True)
