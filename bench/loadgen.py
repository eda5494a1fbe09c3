"""A load-generating client process: real WebSockets and real HTTP against the servers.

The orchestrator (bench/run.py) starts one or more of these and drives each with JSON lines on
stdin; every command answers with one JSON line on stdout. Times are ``time.monotonic()``, which on
Linux is one clock for every process of the machine, so a send time taken in one client and a
receive time taken in another compare directly. HTTP goes through bench/http11.py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import raise_fd_limit, token_for, username_for  # noqa: E402
from cycleload import cycles  # noqa: E402
from http11 import HttpPool  # noqa: E402
from pushload import post_at_rate, register  # noqa: E402
from sockets import Listener, open_device, paced, ws_url  # noqa: E402

# --- messages at a fixed rate --------------------------------------------------------------------


async def invite_at_rate(
    base: str,
    callers: list[int],
    callees: list[int],
    rate: float,
    duration: float,
    prefix: str,
    cancel_after: float,
    timeout: int = 60,
    drain: float = 60.0,
    keep: bool = False,
) -> dict[str, Any]:
    """POST /api/calls/ at a fixed rate, each to a free callee, and cancel each one later.

    ``cancel_after`` >= 0: each call is cancelled that many seconds after its invite, and its
    caller and callee become free again, so a small population sustains any rate (but the
    server then takes a cancel for every invitation: twice the writes of the rate).
    ``cancel_after`` < 0: the calls are cancelled only after the sending window, so only the
    invitations load the server while latency is measured; users are not reused.
    An invitation that finds nobody free is counted as skipped, not sent. ``keep``: leave the
    calls ringing and return them as ``open``, for ``cancel_calls`` once their rings are counted
    (a device that connects later rings through ``session.ready``, if the call still rings).
    """
    pool = HttpPool(base)
    free_callers = collections.deque(callers)
    free_callees = collections.deque(callees)
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}  # when each 201 was read, for the push part's split
    statuses: collections.Counter[str] = collections.Counter()
    bodies: list[str] = []
    response_ms: list[float] = []
    lags: list[float] = []
    skipped = 0
    tasks: list[asyncio.Task[None]] = []
    deferred: list[tuple[str, str]] = []  # (token, call id) to cancel after the window

    async def one(tag: str, caller: int, callee: int) -> None:
        token = token_for(caller)
        try:
            status, body, at = await pool.request(
                "POST",
                "/api/calls/",
                token,
                {
                    "invitees": [username_for(callee)],
                    "type": "audio",
                    "timeout": timeout,
                    "extended_data": tag,
                },
            )
            response_ms.append((time.monotonic() - at) * 1000)
            statuses[f"invite {status}"] += 1
            if status != 201:
                if len(bodies) < 5:
                    bodies.append(body[:300].decode(errors="replace"))
                return
            sent[tag] = at
            answered[tag] = time.monotonic()
            call_id = json.loads(body)["call"]["id"]
            if cancel_after < 0:
                deferred.append((token, call_id))
                return
            await asyncio.sleep(cancel_after)
            status, body, _ = await pool.request("POST", f"/api/calls/{call_id}/cancel/", token, {})
            statuses[f"cancel {status}"] += 1
            if status != 200 and len(bodies) < 5:
                bodies.append(body[:300].decode(errors="replace"))
        except Exception as exc:
            statuses[f"exception {type(exc).__name__}"] += 1
        finally:
            if cancel_after >= 0:
                free_callers.append(caller)
                free_callees.append(callee)

    total = int(rate * duration)
    t0 = time.monotonic()
    async for i in paced(rate, duration, lags):
        if not free_callers or not free_callees:
            skipped += 1
            continue
        tasks.append(
            asyncio.create_task(
                one(f"{prefix}:{i}", free_callers.popleft(), free_callees.popleft())
            )
        )
    # Bounded: what has not answered by then is counted as failed (never sent).
    _, pending = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    statuses["unfinished"] += len(pending)
    if deferred and not keep:
        # Outside the measured window: free every callee before the next phase.
        statuses.update(await cancel_calls(base, deferred, max(drain, 30.0), pool))
    pool.close()
    return {
        "sent": sent,
        "answered": answered,
        "attempted": total - skipped,
        "skipped": skipped,
        "statuses": dict(statuses),
        "bodies": bodies,
        "response_ms": response_ms,
        "send_lag_max_ms": round(max(lags) * 1000, 2) if lags else 0,
        "wall": round(time.monotonic() - t0, 3),
        "open": deferred if keep else [],
    }


async def cancel_calls(
    base: str,
    calls: list[list[str]] | list[tuple[str, str]],
    limit_s: float = 30.0,
    pool: HttpPool | None = None,
) -> dict[str, int]:
    """Cancel (token, call id) pairs, 8 at a time; the answers' statuses, counted."""
    own = pool is None
    pool = pool or HttpPool(base)
    statuses: collections.Counter[str] = collections.Counter()
    limit = asyncio.Semaphore(8)

    async def cancel(token: str, call_id: str) -> None:
        async with limit:
            with contextlib.suppress(Exception):
                status, _, _ = await pool.request(
                    "POST", f"/api/calls/{call_id}/cancel/", token, {}
                )
                statuses[f"cancel {status}"] += 1

    if calls:
        await asyncio.wait([asyncio.create_task(cancel(*c)) for c in calls], timeout=limit_s)
    if own:
        pool.close()
    return dict(statuses)


class RelaySenders:
    """Sockets that send the relay's messages, opened once per relay so no phase pays for them."""

    def __init__(self) -> None:
        self.socks: dict[str, list[ClientConnection]] = {}
        self.drains: list[asyncio.Task[None]] = []

    async def open(self, template: str, senders: list[int]) -> list[ClientConnection]:
        if template not in self.socks:
            socks = [(await open_device(ws_url(template, i), []))[0] for i in senders]
            self.drains += [asyncio.create_task(_drain(ws)) for ws in socks]
            self.socks[template] = socks
        return self.socks[template]

    async def close(self) -> None:
        every = [ws for socks in self.socks.values() for ws in socks]
        await asyncio.gather(*(ws.close() for ws in every), return_exceptions=True)
        for task in self.drains:
            task.cancel()
        self.socks.clear()


async def relay_at_rate(
    relays: RelaySenders,
    template: str,
    senders: list[int],
    targets: list[int],
    rate: float,
    duration: float,
    prefix: str,
) -> dict[str, Any]:
    """The baseline: messages sent over sockets of the bare relay to other sockets, at a rate."""
    socks = await relays.open(template, senders)
    sent: dict[str, float] = {}
    lags: list[float] = []
    async for i in paced(rate, duration, lags):
        tag = f"{prefix}:{i}"
        msg = json.dumps({"type": "relay", "to": targets[i % len(targets)], "tag": tag})
        sent[tag] = time.monotonic()
        await socks[i % len(socks)].send(msg)
    return {
        "sent": sent,
        "attempted": len(sent),
        "skipped": 0,
        "statuses": {},
        "send_lag_max_ms": round(max(lags) * 1000, 2) if lags else 0,
    }


async def _drain(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        async for _ in ws:
            pass


# --- the command loop --------------------------------------------------------------------------


def _settle() -> None:
    """After opening sockets, between commands: collect once, then freeze what survives.

    A client holding thousands of sockets otherwise runs full collections over all of them
    while it measures: 0.4-0.8 s pauses at 10,000 sockets (gc.callbacks, 2026-12-07), which
    time-stamped frames late and put the client's pauses into the server's latency. Real
    clients are separate devices. This process lives for one run, so what freezing keeps
    from the collector (cycles of sockets closed later) does not matter here."""
    gc.collect()
    gc.freeze()


async def main() -> None:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    listener = Listener()
    relays = RelaySenders()

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    for _ in range(10_000):  # bounded: the orchestrator sends a few dozen commands
        line = await reader.readline()
        if not line:
            break
        req = json.loads(line)
        cmd = req.pop("cmd")
        try:
            if cmd == "quit":
                await listener.close_all()
                await relays.close()
                break
            elif cmd == "connect":
                reply(await listener.connect(**req))
                _settle()
            elif cmd == "reconnect":
                reply(await listener.reconnect(**req))
                _settle()
            elif cmd == "close_all":
                reply({"closed": await listener.close_all(**req)})
            elif cmd == "peek":
                reply({"received": len(listener.recv)})
            elif cmd == "take":
                reply(listener.take())
            elif cmd == "invite":
                reply(await invite_at_rate(**req))
            elif cmd == "cancel_calls":
                reply({"statuses": await cancel_calls(**req)})
            elif cmd == "push_register":
                reply(await register(**req))
            elif cmd == "fixture_post":
                reply(await post_at_rate(**req))
            elif cmd == "relay":
                reply(await relay_at_rate(relays, **req))
            elif cmd == "relay_open":
                reply({"open": len(await relays.open(**req))})
                _settle()
            elif cmd == "cycles":
                reply(await cycles(**req))
            else:
                reply({"fatal": f"unknown command {cmd}"})
        except Exception as exc:
            reply({"fatal": repr(exc)})


if __name__ == "__main__":
    asyncio.run(main())
