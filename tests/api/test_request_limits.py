"""Request bodies: 64 KiB at most at any path (413, before parsing), deep JSON is a 400, and no
request input ever leaves a traceback in the logs (API.md "Limits").

The 413 specs go through the real ASGI application (callsite.asgi), as Daphne would call it:
the limit sits in front of Django, where the test client never passes.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from channels.testing import ApplicationCommunicator
from rest_framework.test import APIClient

from callsite.asgi import application
from tests.callflow import error_of, http_scope, read_answer

LIMIT = 64 * 1024


async def post(path: str, chunks: list[bytes], *, declared: int | None) -> dict[str, Any]:
    """POST the chunks as an ASGI server streams them; returns status, headers, JSON body and how
    many chunks the application read before it answered."""
    headers = [(b"content-type", b"application/json")]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    comm = ApplicationCommunicator(application, http_scope(path, headers))
    sent = 0
    for i, chunk in enumerate(chunks):
        await comm.send_input(
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        )
        sent += 1
        if not await comm.receive_nothing(0.05):
            break
    start, body = await read_answer(comm, 5)
    await comm.wait(5)
    return {
        "status": start["status"],
        "headers": dict(start["headers"]),
        "json": json.loads(body) if body else None,
        "chunks_sent": sent,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/calls/", "/accounts/login/", "/nope/"])
async def test_a_declared_body_over_64_kib_is_refused_with_413_before_it_is_read(
    path: str,
) -> None:
    answer = await post(path, [b"x"], declared=1024 * 1024 * 1024)
    assert answer["status"] == 413
    assert answer["json"]["error"]["code"] == "payload_too_large"


@pytest.mark.django_db(transaction=True)
async def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_64_kib() -> None:
    # Chunked: no Content-Length. 1 GB would be 16,384 chunks; the answer comes after the second.
    chunks = [b" " * LIMIT] * 16
    answer = await post("/api/auth/token/", chunks, declared=None)
    assert answer["status"] == 413
    assert answer["json"]["error"]["code"] == "payload_too_large"
    assert answer["chunks_sent"] == 2


@pytest.mark.django_db(transaction=True)
async def test_a_body_of_exactly_64_kib_reaches_the_view() -> None:
    body = json.dumps({"username": "nobody", "password": "x" * (LIMIT - 100)})
    body = body.ljust(LIMIT)
    answer = await post("/api/auth/token/", [body.encode()], declared=LIMIT)
    # The view parsed it and said what a wrong password gets.
    assert answer["status"] == 401, answer


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [33, 5000, 100_000])
def test_deeply_nested_json_is_a_400_validation_error(depth: int, client_for: Any) -> None:
    for client, path in ((APIClient(), "/api/auth/token/"), (client_for("alice"), "/api/calls/")):
        res = client.post(path, "[" * depth, content_type="application/json")
        error_of(res, 400, "validation_error")
        nested = '{"a":' * depth + "1" + "}" * depth
        res = client.post(path, nested, content_type="application/json")
        error_of(res, 400, "validation_error")


@pytest.mark.django_db
def test_json_nested_up_to_the_limit_is_parsed(client_for: Any) -> None:
    body = {"invitees": ["bob"], "extended_data": "x"}
    deep: Any = 1
    for _ in range(31):
        deep = [deep]
    body["ignored"] = deep  # depth 32 with the body object itself
    res = client_for("alice").post("/api/calls/", body, format="json")
    assert res.status_code == 201, res.content


@pytest.fixture
def console_log() -> Iterator[io.StringIO]:
    """What the configured console handler writes (the real LOGGING, filters included)."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    handlers = [h for h in handlers if type(h) is logging.StreamHandler]
    assert handlers, "LOGGING has no console handler"
    buffer = io.StringIO()
    old = [h.setStream(buffer) for h in handlers]
    yield buffer
    for h, stream in zip(handlers, old, strict=True):
        h.setStream(stream)


@pytest.mark.django_db
def test_bad_request_input_never_logs_a_traceback(
    console_log: io.StringIO, client_for: Any, settings: Any
) -> None:
    settings.DEBUG = False
    client = client_for("alice")
    client.raise_request_exception = False
    answers = [
        client.get("/api/me/", HTTP_HOST="evil.example"),  # DisallowedHost
        client.get("/calls/00000000-0000-0000-0000-000000000000/"),  # Http404 in a page view
        client.post("/api/calls/", "[" * 5000, content_type="application/json"),
        client.post("/api/calls/", b"\xff\xfe{", content_type="application/json"),
        client.get("/api/calls/not-a-uuid/"),
        client.get("/api/users/?page=99999999999999999999"),
    ]
    assert all(a.status_code < 500 for a in answers), [a.status_code for a in answers]
    assert "Traceback" not in console_log.getvalue(), console_log.getvalue()
