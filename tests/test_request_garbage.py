"""A finished request leaves nothing for the cyclic garbage collector (issue 9).

Reference cycles made each request's whole object graph (the request, DRF's request and view,
the session, the response) wait for the cyclic collector instead of being freed when the
response went out. At 50 invitations a second with 1,000 sockets open, that garbage and what it
promoted made the server's full collections pause the event loop for 60-150 ms every few
seconds (bench/README.md, "Issue 9, eighth round"). These tests make requests through the real
ASGI application, as Daphne calls it, and look at what only the collector could free.

The API is held to none. HTML pages still leave the cycles of Django's forms and templates
(a bound field and its form, a view and its ``head``): one page load per visit, not per call.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from channels.testing import ApplicationCommunicator
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.request import Request
from rest_framework.views import APIView

from callsite.asgi import application
from callsite.handlers import SyncChainASGIHandler
from invitations import tokens
from tests.callflow import http_scope, read_answer

# What a request's graph holds; none of it may be left for the collector.
REQUEST_GRAPH = (HttpRequest, Request, APIView, HttpResponseBase)


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """The objects that only the cyclic collector would have freed inside the block."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[object] = []
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def histogram(objects: list[object]) -> str:
    kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
    return ", ".join(f"{n} {kind}" for kind, n in kinds.most_common(15))


async def request(method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    """One request as Daphne makes it: the body, then ``http.disconnect`` once it is answered."""
    data = json.dumps(body).encode() if body is not None else b""
    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", f"Token {token}".encode()),
        (b"content-length", str(len(data)).encode()),
    ]
    scope = http_scope(path, headers, method)
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": data})
    start, content = await read_answer(comm, 10)
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait(10)
    return start["status"], json.loads(content) if content else None


@pytest.mark.django_db(transaction=True)
async def test_invite_cancel_and_reads_leave_no_request_for_the_cyclic_collector(
    users: dict[str, Any],
) -> None:
    token, _ = await asyncio.to_thread(tokens.issue, user=users["alice"], device_id="phone")
    await request("GET", "/api/me/", token)  # imports and caches made once, outside the count
    with cyclic_garbage() as garbage:
        for _ in range(3):
            status, body = await request("POST", "/api/calls/", token, {"invitees": ["bob"]})
            assert status == 201, body
            status, body = await request("POST", f"/api/calls/{body['call']['id']}/cancel/", token)
            assert status == 200, body
            status, body = await request("GET", "/api/me/", token)
            assert status == 200, body
            status, body = await request("POST", "/api/calls/", token, {"invitees": 7})
            assert status == 400, body  # an error answer is freed as well
    left = [o for o in garbage if issubclass(type(o), REQUEST_GRAPH)]  # no lazy object evaluated
    assert not left, f"{len(garbage)} objects waited for the collector: {histogram(garbage)}"


class Parked(SyncChainASGIHandler):
    """The real handler with a view that never answers until it is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = asyncio.Event()

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        raise AssertionError("unreachable")


@pytest.mark.django_db(transaction=True)
async def test_a_client_that_disconnects_before_the_answer_still_cancels_the_view() -> None:
    """The other half of the handler's contract: ``listen_for_disconnect`` returns on a
    disconnect instead of raising, and Django 5.2's ``handle`` must still cancel the view on it
    (a Django whose ``handle`` cancels only on a raise fails here)."""
    handler = Parked()
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/me/",
        "headers": [],
        "query_string": b"",
    }
    comm = ApplicationCommunicator(handler, scope)
    await comm.send_input({"type": "http.request", "body": b""})
    assert await comm.receive_nothing(0.2)  # the view is running
    await comm.send_input({"type": "http.disconnect"})
    await asyncio.wait_for(handler.cancelled.wait(), 5)
    await comm.wait(5)
    assert await comm.receive_nothing(0.1)  # and nothing was answered to a gone client
