"""One middleware per request: its id, its log context, its metrics and its access line.

Sync and async capable, so Django never adds a thread hop for it: under ASGI it runs on the
event loop, under a sync handler in the request's thread. The work is a few dictionary and
counter updates and one log record.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from . import logs
from .metrics import HTTP_DURATION, HTTP_REQUESTS, REQUEST_STARTED

access = logging.getLogger("callsite.access")

# Probes and scrapes come every few seconds: their lines would drown the others.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# nginx sends its $request_id (deploy/nginx); anything else is replaced, not trusted.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_of(request: HttpRequest) -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def view_label(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    # URL names, not paths: a label per call id would grow without bound.
    return match.view_name if match is not None else "<unmatched>"


class RequestObservabilityMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        started, request_id, token = self._start(request)
        try:
            response = self.get_response(request)
            self._finish(request, response, started, request_id)
            return response
        finally:
            self._end(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started, request_id, token = self._start(request)
        try:
            response: HttpResponse = await self.get_response(request)
            self._finish(request, response, started, request_id)
            return response
        finally:
            self._end(token)

    def _start(self, request: HttpRequest) -> tuple[float, str, Any]:
        request_id = request_id_of(request)
        started = time.perf_counter()
        # For the invite-to-publish latency (callsite/metrics.py).
        timing = REQUEST_STARTED.set(started)
        return started, request_id, (timing, logs.bind(request_id=request_id, request=request))

    @staticmethod
    def _end(tokens: Any) -> None:
        timing, context = tokens
        logs.reset(context)
        REQUEST_STARTED.reset(timing)

    def _finish(
        self, request: HttpRequest, response: HttpResponse, started: float, request_id: str
    ) -> None:
        elapsed = time.perf_counter() - started
        view = view_label(request)
        HTTP_REQUESTS.labels(view=view, method=request.method, status=response.status_code).inc()
        HTTP_DURATION.labels(view=view).observe(elapsed)
        response["X-Request-ID"] = request_id
        level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
        if access.isEnabledFor(level):
            # The path alone: a query string may carry a token (?token= on /ws/ and pages).
            access.log(
                level,
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "view": view,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
