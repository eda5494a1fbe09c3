"""Break the reference cycles a finished request leaves, so reference counting frees it.

Django, DRF and the middleware tie a request's objects into cycles: DRF's request holds its
view in ``parser_context`` and itself in it, its response holds the view and the request in
``renderer_context`` while the view holds the response, and middleware leave lazy objects and
storages on the request that hold the request again. Nothing in the graph was freed until the
cyclic collector ran, and at a server's request rate that garbage, and what it promoted into
the oldest generation, made full collections that paused the event loop for 60-150 ms every few
seconds at 1,000 sockets (issue 9; tests/test_request_garbage.py keeps the API at none).

Every reference cut here is one the libraries read only while the view runs or the response
renders, and every middleware has returned when ``release`` is called. A streaming response is
left alone: its body may still read the request while it is sent.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase

# What middleware set on the request that holds the request again: AuthenticationMiddleware's
# lazy ``user`` (a closure over the request) and ``auser`` (a partial of it), the messages
# storage, and django-csp's lazy nonce (a partial of its middleware's method and the request).
MIDDLEWARE_BACK_REFERENCES = ("user", "auser", "_messages", "csp_nonce")


def release(request: HttpRequest, response: HttpResponseBase) -> None:
    """Cut the request's cycles once its response has passed every middleware."""
    if response.streaming:
        return
    context: dict[str, Any] | None = getattr(response, "renderer_context", None)
    if context:
        drf_request = context.get("request")
        if drf_request is not None:
            drf_request.parser_context = None  # holds the view and the DRF request itself
        view = context.get("view")
        if view is not None:
            view.__dict__.pop("head", None)  # View.setup's `self.head = self.get`
        response.renderer_context = None  # type: ignore[attr-defined]  # the view, the request
    for name in MIDDLEWARE_BACK_REFERENCES:
        request.__dict__.pop(name, None)
