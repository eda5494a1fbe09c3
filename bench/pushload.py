"""The client side of the ring-push benchmark (bench/pushbench.py), run inside bench/loadgen.py.

``register``: each user gets a Web Push subscription from the local Web Push fixture (``POST
/_fixture/subscribe``, what a browser's ``pushManager.subscribe()`` returns) and registers it as
the app does, ``POST /api/push/devices/`` with the user's token. ``post_at_rate``: the baseline,
bare POSTs from this client to the fixture at a rate, so the fixture's own receive path (loopback
HTTP, its event loop) is measured in the same run.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from typing import Any

from common import token_for
from http11 import HttpPool
from sockets import paced

DEVICE_ID = "bench-browser"


async def register(
    base: str, fixture: str, users: list[int], concurrency: int = 8
) -> dict[str, Any]:
    """Subscribe and register a webpush device for each of ``users``; statuses counted."""
    server, service = HttpPool(base), HttpPool(fixture)
    statuses: collections.Counter[str] = collections.Counter()
    bodies: list[str] = []
    limit = asyncio.Semaphore(concurrency)
    t0 = time.monotonic()

    async def one(user: int) -> None:
        async with limit:
            for attempt in range(3):  # as an app would: a dropped connection is tried again
                try:
                    await subscribe_and_register(user)
                    return
                except Exception as exc:
                    if attempt == 2:
                        statuses[f"exception {type(exc).__name__}"] += 1
                    await asyncio.sleep(0.2)

    async def subscribe_and_register(user: int) -> None:
        status, body, _ = await service.request("POST", "/_fixture/subscribe", "", {})
        if status != 201:
            statuses[f"subscribe {status}"] += 1
            return
        device = {"device_id": DEVICE_ID, "provider": "webpush", "subscription": json.loads(body)}
        status, body, _ = await server.request(
            "POST", "/api/push/devices/", token_for(user), device
        )
        statuses[f"register {status}"] += 1
        if status not in (200, 201) and len(bodies) < 3:
            bodies.append(body[:300].decode(errors="replace"))

    await asyncio.gather(*(one(u) for u in users))
    server.close()
    service.close()
    return {
        "statuses": dict(statuses),
        "bodies": bodies,
        "secs": round(time.monotonic() - t0, 2),
    }


async def post_at_rate(
    fixture: str, rate: float, duration: float, prefix: str, size: int = 400
) -> dict[str, Any]:
    """POST ``size`` bytes to ``/push/<prefix>-<i>`` of the fixture at ``rate``: an unknown
    subscription, answered 410 after the fixture recorded it, with its receive time."""
    pool = HttpPool(fixture)
    sent: dict[str, float] = {}
    lags: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    body = {"pad": "x" * max(0, size - 11)}

    async def one(key: str) -> None:
        try:
            _, _, at = await pool.request("POST", f"/push/{key}", "", body)
            sent[key] = at
        except Exception:  # noqa: S110 -- not sent: not counted
            pass

    async for i in paced(rate, duration, lags):
        tasks.append(asyncio.create_task(one(f"{prefix}-{i}")))
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    pool.close()
    return {"sent": sent, "send_lag_max_ms": round(max(lags) * 1000, 2) if lags else 0}
