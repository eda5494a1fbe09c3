"""BoundedHTTP under overload: a request that cannot start within the wait gets a quick 503.

Real ASGI calls into the real class, with an inner app that holds its slot until told to let
go, so the queue is full exactly when the test says.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgiref.testing import ApplicationCommunicator

from callsite.asgi import BoundedHTTP


class Holding:
    """An inner app that answers 200 once ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.started += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def request(app: Any) -> ApplicationCommunicator:
    scope = {"type": "http", "method": "GET", "path": "/api/me/", "headers": []}
    return ApplicationCommunicator(app, scope)


async def test_a_request_past_the_wait_gets_503_with_the_error_envelope_then_it_recovers() -> None:
    inner = Holding()
    app = BoundedHTTP(inner, limit=1, max_wait=0.2)
    first = request(app)
    await first.send_input({"type": "http.request", "body": b""})
    await asyncio.sleep(0.05)
    assert inner.started == 1

    second = request(app)
    await second.send_input({"type": "http.request", "body": b""})
    start = await second.receive_output(timeout=2)
    body = await second.receive_output(timeout=1)
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"1"
    assert headers[b"content-type"] == b"application/json"
    assert json.loads(body["body"])["error"]["code"] == "overloaded"
    assert inner.started == 1  # it never reached Django

    # when the load stops, the next request is served
    inner.release.set()
    assert (await first.receive_output(timeout=1))["status"] == 200
    await first.receive_output(timeout=1)
    third = request(app)
    await third.send_input({"type": "http.request", "body": b""})
    assert (await third.receive_output(timeout=1))["status"] == 200
    await third.receive_output(timeout=1)
