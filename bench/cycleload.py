"""Full call cycles for the load generator: invite, ring, ack, accept, end, in a closed loop."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from typing import Any

from common import token_for, username_for
from http11 import HttpError, HttpPool
from sockets import is_subscribe_error, open_device, watch_list, ws_url
from websockets.asyncio.client import ClientConnection


class Device:
    """One connected user in the cycle benchmark; resolves futures as its events arrive."""

    def __init__(self, index: int, ws: ClientConnection, errors: list[str]) -> None:
        self.name = username_for(index)
        self.ws = ws
        self.errors = errors
        self.invites: dict[str, asyncio.Future[str]] = {}
        self.acks: dict[str, asyncio.Future[None]] = {}
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "call.invitation_received":
                    fut = self.invites.pop(msg.get("extended_data", ""), None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg["call_id"])
                elif kind == "call.user_state_changed":
                    if msg.get("user") == self.name and msg.get("state") == "received":
                        ack = self.acks.pop(msg.get("call_id", ""), None)
                        if ack is not None and not ack.done():
                            ack.set_result(None)
                elif kind == "error" and not is_subscribe_error(msg):
                    self.errors.append(json.dumps(msg)[:300])


async def cycles(
    pairs: list[list[Any]], template: str, duration: float, prefix: str, watch: int = 50
) -> dict[str, Any]:
    """Closed loop per pair: invite, ring, ack, accept, end; as many cycles as fit in duration.

    ``pairs``: [caller index, callee index, caller server "host:port", callee server]. Each
    socket subscribes to the presence of ``watch`` other users of the pairs, as the app does.
    """
    everyone = [i for pair in pairs for i in pair[:2]]
    lo, hi = min(everyone, default=0), max(everyone, default=0) + 1
    errors: list[str] = []
    pools: dict[str, HttpPool] = {}
    devices: list[tuple[Device, Device, HttpPool, HttpPool]] = []
    for caller, callee, caller_base, callee_base in pairs:
        for base in (caller_base, callee_base):
            pools.setdefault(base, HttpPool(base))
        try:
            wa = (
                await open_device(
                    ws_url(template.replace("{base}", caller_base), caller),
                    watch_list(caller, lo, hi, watch),
                )
            )[0]
            wb = (
                await open_device(
                    ws_url(template.replace("{base}", callee_base), callee),
                    watch_list(callee, lo, hi, watch),
                )
            )[0]
        except Exception as exc:  # an error of the run, not a crash of the client
            errors.append(f"connect pair {caller}/{callee}: {exc!r}"[:300])
            continue
        a, b = Device(caller, wa, errors), Device(callee, wb, errors)
        devices.append((a, b, pools[caller_base], pools[callee_base]))
    done: list[float] = []
    statuses: collections.Counter[str] = collections.Counter()
    t_start = time.monotonic()
    t_end = t_start + duration

    async def check(what: str, result: tuple[int, bytes, float], want: int) -> bytes:
        status, body, _ = result
        statuses[f"{what} {status}"] += 1
        if status != want:
            errors.append(f"{what} {status}: {body[:200].decode(errors='replace')}")
            raise HttpError(what)
        return body

    async def loop(k: int, a: Device, b: Device, pa: HttpPool, pb: HttpPool) -> None:
        ta, tb = token_for(int(a.name[1:])), token_for(int(b.name[1:]))
        n = 0
        while time.monotonic() < t_end:
            n += 1
            tag = f"{prefix}:{k}:{n}"
            t0 = time.monotonic()
            ring: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            b.invites[tag] = ring
            try:
                body = await check(
                    "invite",
                    await pa.request(
                        "POST", "/api/calls/", ta, {"invitees": [b.name], "extended_data": tag}
                    ),
                    201,
                )
                call_id = json.loads(body)["call"]["id"]
                await asyncio.wait_for(ring, 10)
                acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                b.acks[call_id] = acked
                await b.ws.send(json.dumps({"type": "call.ack", "call_id": call_id}))
                await asyncio.wait_for(acked, 10)
                await check(
                    "accept", await pb.request("POST", f"/api/calls/{call_id}/accept/", tb, {}), 200
                )
                await check(
                    "end", await pa.request("POST", f"/api/calls/{call_id}/end/", ta, {}), 200
                )
            except TimeoutError:
                errors.append(f"pair {k}: no event within 10 s")
                return
            except Exception as exc:
                errors.append(f"pair {k}: {exc!r}"[:300])
                return
            if time.monotonic() <= t_end:
                done.append(time.monotonic() - t0)

    await asyncio.gather(*(loop(k, *d) for k, d in enumerate(devices)))
    wall = time.monotonic() - t_start
    for a, b, _, _ in devices:
        await a.ws.close()
        await b.ws.close()
        a.task.cancel()
        b.task.cancel()
    for pool in pools.values():
        pool.close()
    return {
        "cycles": len(done),
        "secs": round(duration, 3),
        "wall": round(wall, 3),
        "cycle_s": done,
        "errors": errors[:20],
        "error_count": len(errors),
        "statuses": dict(statuses),
    }
