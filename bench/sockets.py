"""Benchmark WebSockets that behave like the browser app's: connect, read, subscribe to presence.

The browser app subscribes to the presence of the people it shows right after ``session.ready``
(API.md, "Presence"), so every benchmark socket does the same with ``watch`` usernames. A server
that predates ``presence.subscribe`` answers it with an ``error`` frame (unknown type) and keeps
broadcasting presence to every socket; that error is counted apart and otherwise ignored, so the
same clients measure both servers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from common import percentile, token_for, username_for
from websockets.asyncio.client import ClientConnection, connect

OPEN_TIMEOUT = 120.0
SUBSCRIBE = "presence.subscribe"


def ws_url(template: str, index: int) -> str:
    return template.format(token=token_for(index), id=index, user=username_for(index))


def watch_list(index: int, first: int, last: int, count: int) -> list[str]:
    """The ``count`` users after ``index`` in its population [first, last), wrapping around.

    Neighbours rather than random users: every user is then watched by ``count`` sockets, as in
    a population of contacts, and its presence changes reach subscribers on the server.
    """
    size = last - first
    around = range(1, min(count, size - 1) + 1)
    return [username_for(first + (index - first + k) % size) for k in around]


def is_subscribe_error(msg: dict[str, Any]) -> bool:
    """The answer of a server without presence subscriptions: tolerated, counted apart."""
    return msg.get("type") == "error" and SUBSCRIBE in json.dumps(msg)


async def open_device(
    url: str, watch: list[str], timeout: float = OPEN_TIMEOUT
) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect, wait for the first frame (``session.ready``, the relay's ``ready``), subscribe."""
    ws = await connect(
        url,
        open_timeout=timeout,
        ping_interval=None,
        close_timeout=2,
        compression=None,
        max_queue=None,
    )
    try:
        first = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if watch:
            await ws.send(json.dumps({"type": SUBSCRIBE, "users": watch}))
    except BaseException:
        ws.transport.abort()
        raise
    return ws, first


def rung_tags(msg: dict[str, Any]) -> list[str]:
    """The invitations (by ``extended_data``) a frame makes ring on the device.

    ``call.invitation_received``, or ``session.ready`` listing calls still ringing for a device
    that connected after the invite (how a device in a connect storm learns of it).
    """
    kind = msg.get("type")
    if kind == "call.invitation_received":
        return [str(msg.get("extended_data", ""))]
    if kind == "session.ready":
        return [str(c.get("extended_data", "")) for c in msg.get("incoming") or []]
    return []


async def paced(rate: float, duration: float, lags: list[float]) -> AsyncIterator[int]:
    """Yields 0, 1, ... at ``rate`` per second for ``duration``; notes how late each came."""
    t0 = time.monotonic() + 0.05
    for i in range(int(rate * duration)):
        target = t0 + i / rate
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(time.monotonic() - target)
        yield i


class Listener:
    """Idle devices that note when each tagged invitation (or relayed message) rings on them."""

    def __init__(self) -> None:
        self.sockets: dict[int, ClientConnection] = {}
        self.urls: dict[int, tuple[str, list[str]]] = {}
        self.readers: dict[int, asyncio.Task[None]] = {}
        self.recv: dict[str, float] = {}
        self.errors: list[str] = []
        self.subscribe_errors = 0
        self.frames: collections.Counter[str] = collections.Counter()

    def _note(self, msg: dict[str, Any], now: float) -> None:
        kind = str(msg.get("type"))
        self.frames[kind] += 1
        for tag in rung_tags(msg):
            self.recv.setdefault(tag, now)  # the first ring counts
        if kind == "relay":
            self.recv.setdefault(str(msg.get("tag", "")), now)
        elif kind == "error":
            if is_subscribe_error(msg):
                self.subscribe_errors += 1
            else:
                self.errors.append(json.dumps(msg)[:300])

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                self._note(json.loads(raw), time.monotonic())

    async def _open(
        self, index: int, url: str, watch: list[str], sem: asyncio.Semaphore, timeout: float
    ) -> float | None:
        """Seconds until this socket's first frame, or None if it failed (counted, not fatal)."""
        async with sem:
            t0 = time.monotonic()
            try:
                ws, first = await open_device(url, watch, timeout)
            except Exception as exc:
                self.errors.append(f"connect {index}: {exc!r}"[:300])
                return None
        self._note(first, time.monotonic())
        self.sockets[index] = ws
        self.urls[index] = (url, watch)
        self.readers[index] = asyncio.create_task(self._read(ws))
        return time.monotonic() - t0

    async def _open_many(
        self, todo: dict[int, tuple[str, list[str]]], concurrency: int, timeout: float
    ) -> dict[str, Any]:
        sem = asyncio.Semaphore(concurrency)
        t0 = time.monotonic()
        ready = await asyncio.gather(
            *(self._open(i, url, watch, sem, timeout) for i, (url, watch) in todo.items())
        )
        secs = time.monotonic() - t0
        ok = [r for r in ready if r is not None]
        return {
            "connected": len(ok),
            "failed": len(ready) - len(ok),
            "secs": round(secs, 3),
            "rate": round(len(ok) / secs, 1) if secs else None,
            # From each socket's connect to its session.ready (the relay's ready).
            "ready_p50_s": round(percentile(ok, 50), 3) if ok else None,
            "ready_p99_s": round(percentile(ok, 99), 3) if ok else None,
            "ready_max_s": round(max(ok), 3) if ok else None,
            "subscribe_errors": self.subscribe_errors,
            "frames": dict(self.frames),
            "errors": self.errors[:5],
        }

    async def connect(
        self,
        template: str,
        first: int,
        last: int,
        concurrency: int,
        watch: int = 0,
        timeout: float = OPEN_TIMEOUT,
    ) -> dict[str, Any]:
        """Sockets for users [first, last), each watching ``watch`` of the others' presence."""
        todo = {
            i: (ws_url(template, i), watch_list(i, first, last, watch)) for i in range(first, last)
        }
        return await self._open_many(todo, concurrency, timeout)

    async def drop_all(self) -> int:
        """Cut every connection without a closing handshake (a network blip, a dead phone)."""
        n = len(self.sockets)
        for ws in self.sockets.values():
            ws.transport.abort()
        await asyncio.gather(*self.readers.values(), return_exceptions=True)
        self.sockets.clear()
        self.readers.clear()
        return n

    async def reconnect(self, concurrency: int) -> dict[str, Any]:
        """Reconnect storm: every socket cut at once, then all reconnect together."""
        todo = dict(self.urls)
        dropped = await self.drop_all()
        self.frames.clear()
        self.errors.clear()
        return {"dropped": dropped, **await self._open_many(todo, concurrency, OPEN_TIMEOUT)}

    async def close_all(self, abort: bool = False) -> int:
        if abort:
            n = await self.drop_all()
        else:
            n = len(self.sockets)
            await asyncio.gather(
                *(ws.close() for ws in self.sockets.values()), return_exceptions=True
            )
            await asyncio.gather(*self.readers.values(), return_exceptions=True)
            self.sockets.clear()
            self.readers.clear()
        self.urls.clear()
        return n

    def take(self) -> dict[str, Any]:
        out = {
            "recv": self.recv,
            "errors": self.errors[:20],
            "error_count": len(self.errors),
            "subscribe_errors": self.subscribe_errors,
            "frames": dict(self.frames),
        }
        self.recv, self.errors, self.subscribe_errors = {}, [], 0
        self.frames.clear()
        return out
