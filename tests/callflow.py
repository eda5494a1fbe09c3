"""Small helpers the call-invitation specs share: drive the REST API like a phone, read the DB.

Not fixtures on purpose: the specs stay readable top to bottom, and conftest.py (shared with
the WebSocket and browser suites) stays small.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from invitations.models import Call, CallEvent, Participant


def url(call_id: str, action: str | None = None) -> str:
    return f"/api/calls/{call_id}/" + (f"{action}/" if action else "")


def start_call(client: APIClient, *invitees: str, **fields: Any) -> dict[str, Any]:
    """POST /api/calls/ and return the Call; fails the test unless it answers 201."""
    res = client.post("/api/calls/", {"invitees": list(invitees), **fields}, format="json")
    assert res.status_code == 201, res.content
    return res.json()["call"]


def act(client: APIClient, call_id: str, action: str, **fields: Any) -> Any:
    """POST /api/calls/{id}/<action>/ with a JSON body; returns the raw response."""
    return client.post(url(call_id, action), fields, format="json")


def ok(client: APIClient, call_id: str, action: str, **fields: Any) -> dict[str, Any]:
    res = act(client, call_id, action, **fields)
    assert res.status_code == 200, res.content
    return res.json()["call"]


def error_of(res: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the response is API.md's error envelope with this status and code."""
    assert res.status_code == status, (res.status_code, res.content)
    assert res["Content-Type"].startswith("application/json"), res["Content-Type"]
    body = res.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert set(body["error"]) <= {"code", "message", "details"}, body
    return body["error"]


def who(call: dict[str, Any], username: str) -> dict[str, Any]:
    """The participant entry of a user in a Call snapshot."""
    matches = [p for p in call["participants"] if p["user"] == username]
    assert len(matches) == 1, (username, call["participants"])
    return matches[0]


def states(call: dict[str, Any]) -> dict[str, str]:
    return {p["user"]: p["state"] for p in call["participants"]}


def db_state() -> tuple[list[dict[str, Any]], ...]:
    """Everything a request could change about calls, to prove a refused one changed nothing."""
    return (
        list(Call.objects.order_by("pk").values()),
        list(Participant.objects.order_by("pk").values()),
        list(CallEvent.objects.order_by("pk").values()),
    )


def events_of(call_id: str, username: str | None = None) -> list[str]:
    """The timeline kinds of a call (optionally only those about one user), oldest first."""
    qs = CallEvent.objects.filter(call_id=call_id).order_by("created_at", "id")
    if username is not None:
        qs = qs.filter(subject__username=username)
    return list(qs.values_list("kind", flat=True))


class Inbox:
    """Every call event the server publishes to some users' devices, read off the channel layer.

    Each user gets one test channel in their ``user.<id>`` group, exactly as a connected device
    would; ``take("bob")`` returns (and forgets) what reached bob so far.
    """

    def __init__(self, users: dict[str, Any]) -> None:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        from invitations.events import user_group

        self.layer = get_channel_layer()
        self.channels: dict[str, str] = {}
        for name, user in users.items():
            channel = async_to_sync(self.layer.new_channel)()
            async_to_sync(self.layer.group_add)(user_group(user.pk), channel)
            self.channels[name] = channel

    def forget(self, *names: str) -> None:
        """Drop what reached these users so far: the spec cares about what comes next."""
        for name in names:
            self.take(name)

    def take(self, name: str, wait: float = 0.05) -> list[dict[str, Any]]:
        import asyncio
        import json

        from asgiref.sync import async_to_sync

        async def drain() -> list[dict[str, Any]]:
            got = []
            while True:
                try:
                    message = await asyncio.wait_for(
                        self.layer.receive(self.channels[name]), timeout=wait
                    )
                except TimeoutError:
                    return got
                assert message["type"] == "call.event", message
                got += [json.loads(text) for text in message["texts"]]

        return async_to_sync(drain)()


def together(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs in threads released at the same instant; each result, or the exception."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = job()
        except BaseException as exc:  # reported to the test, never lost in the thread
            results[i] = exc
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a racer hung (deadlock?)"
    close_old_connections()
    return results


async def run_scheduler_until(scheduler: Any, fired: int, bound: float = 10) -> None:
    """Run a timer ``Scheduler`` until it has won ``fired`` timers (or ``bound`` seconds), then
    a little longer, so that a second win for anyone would be counted, and stop it."""
    task = asyncio.ensure_future(scheduler.run())
    try:
        started = time.monotonic()
        while scheduler.fired < fired and time.monotonic() - started < bound:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def channel_messages(layer: Any, channel: str, wait: float = 0.1) -> list[dict[str, Any]]:
    """Every message waiting on a channel-layer channel, read until none comes for ``wait``
    seconds (from sync code; e.g. the timers sent while no worker runs)."""

    async def drain() -> list[dict[str, Any]]:
        got = []
        while True:
            try:
                got.append(await asyncio.wait_for(layer.receive(channel), wait))
            except TimeoutError:
                return got

    return async_to_sync(drain)()


def http_scope(
    path: str, headers: list[tuple[bytes, bytes]], method: str = "POST"
) -> dict[str, Any]:
    """An ASGI HTTP scope as Daphne builds it, for requests to the real ASGI application."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def read_answer(comm: Any, timeout: float) -> tuple[dict[str, Any], bytes]:
    """The response start message and the whole body an ASGI application sent."""
    start = await comm.receive_output(timeout)
    body = b""
    while True:
        message = await comm.receive_output(timeout)
        body += message.get("body", b"")
        if not message.get("more_body"):
            return start, body
