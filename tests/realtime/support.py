"""Helpers for the /ws/ specs: open devices with WebsocketCommunicator, read their events.

Real parts only: the real ASGI websocket stack (auth middleware, router, consumer), the real
services and database, the in-memory channel layer the embedded default uses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from invitations import services, tokens
from invitations.realtime.routing import websocket_application

QUIET = ("presence.changed",)


class Device:
    """One open socket of a user, as a client sees it."""

    def __init__(self, comm: WebsocketCommunicator, ready: dict[str, Any] | None) -> None:
        self.comm = comm
        self.ready = ready
        self.device_id = ready["device_id"] if ready else None
        self.closed = False
        self.disconnected = False

    async def send(self, message: Any) -> None:
        await self.comm.send_to(
            text_data=message if isinstance(message, str) else json.dumps(message)
        )

    async def raw(self, timeout: float = 3) -> dict[str, Any]:
        out = await self.comm.receive_output(timeout)
        if out["type"] == "websocket.close":
            self.closed = True
            return {"type": "<closed>", "code": out.get("code")}
        assert out["type"] == "websocket.send", out
        return json.loads(out["text"])

    async def next(
        self, type: str | None = None, *, skip: tuple[str, ...] = QUIET, timeout: float = 3
    ) -> dict[str, Any]:
        """The next event not in ``skip``; asserts its type when given."""
        while True:
            event = await self.raw(timeout)
            if event["type"] in skip and event["type"] != type:
                continue
            if type is not None:
                assert event["type"] == type, event
            return event

    async def nothing(self, timeout: float = 0.3, *, skip: tuple[str, ...] = QUIET) -> None:
        """Assert no event (other than skipped ones) arrives within ``timeout``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            left = end - loop.time()
            if left <= 0 or await self.comm.receive_nothing(left):
                return
            event = await self.raw()
            assert event["type"] in skip, f"unexpected event {event}"

    async def ping(self) -> None:
        """The socket is open and answers: ping -> pong."""
        await self.send({"type": "ping"})
        assert (await self.next("pong")) == {"type": "pong"}

    async def close(self) -> None:
        """The client goes away. Also after the server closed: that is when a real server tells
        the application the socket is gone (websocket.disconnect)."""
        if not self.disconnected:
            self.closed = self.disconnected = True
            await self.comm.disconnect()


def token_for(user: Any, device_id: str = "") -> str:
    """A new API token of the user (unnamed devices may hold several)."""
    return tokens.issue(user=user, device_id=device_id)[0]


async def open_socket(
    *,
    query: str = "",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(websocket_application(), f"/ws/{query}", headers=headers or [])
    connected, _ = await comm.connect()
    assert connected
    return comm


async def connect(
    user: Any, device_id: str | None = None, *, via: str = "header", extra: str = ""
) -> Device:
    """Open an authenticated device and read its session.ready."""
    key = await database_sync_to_async(token_for)(user)
    params = [extra] if extra else []
    headers: list[tuple[bytes, bytes]] = []
    if via == "header":
        headers.append((b"authorization", f"Token {key}".encode()))
    else:
        params.append(f"token={key}")
    if device_id is not None:
        params.append(f"device_id={device_id}")
    query = ("?" + "&".join(params)) if params else ""
    comm = await open_socket(query=query, headers=headers)
    device = Device(comm, None)
    ready = await device.next("session.ready")
    device.ready, device.device_id = ready, ready["device_id"]
    return device


class Devices:
    """Every device a test opens, closed at teardown (TESTING.md: always disconnect)."""

    def __init__(self) -> None:
        self.opened: list[Device] = []

    async def __call__(self, user: Any, device_id: str | None = None, **kw: Any) -> Device:
        device = await connect(user, device_id, **kw)
        self.opened.append(device)
        return device

    async def close_all(self) -> None:
        for device in self.opened:
            await device.close()


@asynccontextmanager
async def timer_worker() -> AsyncIterator[None]:
    """The real call-timers worker, in this event loop (the embedded default's arrangement)."""
    from invitations.timers import run_embedded_worker

    task = asyncio.ensure_future(run_embedded_worker())
    await asyncio.sleep(0.2)  # let it load pending deadlines
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass


# Services, as the REST views call them, from async tests.
invite = database_sync_to_async(services.invite)
accept = database_sync_to_async(services.accept)
reject = database_sync_to_async(services.reject)
cancel = database_sync_to_async(services.cancel)
end = database_sync_to_async(services.end)
quit_call = database_sync_to_async(services.quit_call)

