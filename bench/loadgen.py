"""A load-generating client process: real WebSockets and real HTTP against the servers.

The orchestrator (bench/run.py) starts one or more of these and drives each with JSON lines on
stdin; every command answers with one JSON line on stdout. Times are ``time.monotonic()``, which on
Linux is one clock for every process of the machine, so a send time taken in one client and a
receive time taken in another compare directly.

HTTP goes through a minimal keep-alive HTTP/1.1 client over asyncio streams: on a 2-core machine
the load generator shares the CPU with the server, and httpx spends several times more CPU per
request than this, which would be taken away from the server being measured.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import raise_fd_limit, token_for, username_for  # noqa: E402

OPEN_TIMEOUT = 120.0


# --- minimal HTTP/1.1 keep-alive client -------------------------------------------------------


class HttpError(Exception):
    pass


class HttpPool:
    """Keep-alive connections to one server; one request at a time on each connection."""

    def __init__(self, base: str) -> None:
        host, _, port = base.partition(":")
        self.host, self.port = host, int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes, float]:
        """Returns (status, body, monotonic time at which the request was written)."""
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        for attempt in range(2):
            reused = bool(self.idle)
            if reused:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            sent_at = time.monotonic()
            try:
                writer.write(head + payload)
                status, data, keep = await self._read(reader)
            except (ConnectionError, asyncio.IncompleteReadError, HttpError):
                writer.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle connection: retry on a new one
                raise
            if keep:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return status, data, sent_at
        raise HttpError("unreachable")

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("connection closed")
        parts = line.split(None, 2)
        if len(parts) < 2:
            raise HttpError(f"bad status line {line!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = False
        keep = True
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.partition(b":")
            name = name.strip().lower()
            value = value.strip()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.lower() == b"close":
                keep = False
        if chunked:
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(chunks)
        elif length is not None:
            data = await reader.readexactly(length)
        else:
            data = await reader.read()
            keep = False
        return status, data, keep

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


# --- sockets ----------------------------------------------------------------------------------


def ws_url(template: str, index: int) -> str:
    return template.format(token=token_for(index), id=index, user=username_for(index))


async def open_socket(url: str) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect and wait for the first message (session.ready, or the relay's ready)."""
    ws = await connect(
        url,
        open_timeout=OPEN_TIMEOUT,
        ping_interval=None,
        close_timeout=2,
        compression=None,
        max_queue=None,
    )
    first = json.loads(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT))
    return ws, first


class Listener:
    """Idle devices that note when each tagged invitation (or relayed message) arrives."""

    def __init__(self) -> None:
        self.sockets: dict[int, ClientConnection] = {}
        self.urls: dict[int, str] = {}
        self.readers: dict[int, asyncio.Task[None]] = {}
        self.recv: dict[str, float] = {}
        self.errors: list[str] = []
        self.first_types: collections.Counter[str] = collections.Counter()

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                now = time.monotonic()
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "call.invitation_received":
                    self.recv[msg.get("extended_data", "")] = now
                elif kind == "relay":
                    self.recv[msg.get("tag", "")] = now
                elif kind == "error":
                    self.errors.append(json.dumps(msg)[:300])

    async def _open(self, index: int, url: str, sem: asyncio.Semaphore) -> bool:
        async with sem:
            try:
                ws, first = await open_socket(url)
            except Exception as exc:  # counted and reported, never fatal
                self.errors.append(f"connect {index}: {exc!r}"[:300])
                return False
        self.first_types[str(first.get("type"))] += 1
        self.sockets[index] = ws
        self.urls[index] = url
        self.readers[index] = asyncio.create_task(self._read(ws))
        return True

    async def connect(
        self, template: str, first: int, last: int, concurrency: int
    ) -> dict[str, Any]:
        sem = asyncio.Semaphore(concurrency)
        t0 = time.monotonic()
        ok = await asyncio.gather(
            *(self._open(i, ws_url(template, i), sem) for i in range(first, last))
        )
        secs = time.monotonic() - t0
        return {
            "connected": sum(ok),
            "failed": len(ok) - sum(ok),
            "secs": round(secs, 3),
            "rate": round(sum(ok) / secs, 1) if secs else None,
            "first_types": dict(self.first_types),
            "errors": self.errors[:5],
        }

    async def drop_all(self) -> int:
        """Cut every connection without a closing handshake (a network blip, a dead phone)."""
        n = len(self.sockets)
        for ws in self.sockets.values():
            ws.transport.abort()
        await asyncio.gather(*self.readers.values(), return_exceptions=True)
        self.sockets.clear()
        self.readers.clear()
        return n

    async def storm(self, concurrency: int) -> dict[str, Any]:
        urls = dict(self.urls)
        dropped = await self.drop_all()
        self.first_types.clear()
        self.errors.clear()
        sem = asyncio.Semaphore(concurrency)
        t0 = time.monotonic()
        ok = await asyncio.gather(*(self._open(i, u, sem) for i, u in urls.items()))
        secs = time.monotonic() - t0
        return {
            "dropped": dropped,
            "reconnected": sum(ok),
            "failed": len(ok) - sum(ok),
            "secs": round(secs, 3),
            "rate": round(sum(ok) / secs, 1) if secs else None,
            "errors": self.errors[:5],
        }

    async def close_all(self) -> int:
        n = len(self.sockets)
        await asyncio.gather(*(ws.close() for ws in self.sockets.values()), return_exceptions=True)
        await asyncio.gather(*self.readers.values(), return_exceptions=True)
        self.sockets.clear()
        self.readers.clear()
        self.urls.clear()
        return n

    def take(self) -> dict[str, Any]:
        out = {"recv": self.recv, "errors": self.errors[:20], "error_count": len(self.errors)}
        self.recv, self.errors = {}, []
        return out


# --- invitations at a fixed rate ----------------------------------------------------------------


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
) -> dict[str, Any]:
    """POST /api/calls/ at a fixed rate, each to a free callee, and cancel each one later.

    ``cancel_after`` >= 0: each call is cancelled that many seconds after its invite, and its
    caller and callee become free again, so a small population sustains any rate (but the
    server then takes a cancel for every invitation: twice the writes of the rate).
    ``cancel_after`` < 0: the calls are cancelled only after the sending window, so only the
    invitations load the server while latency is measured; users are not reused.
    An invitation that finds nobody free is counted as skipped, not sent.
    """
    pool = HttpPool(base)
    free_callers = collections.deque(callers)
    free_callees = collections.deque(callees)
    sent: dict[str, float] = {}
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
    t0 = time.monotonic() + 0.05
    for i in range(total):
        target = t0 + i / rate
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(time.monotonic() - target)
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
    if deferred:
        # Outside the measured window: free every callee before the next phase.
        limit = asyncio.Semaphore(8)

        async def cancel(token: str, call_id: str) -> None:
            async with limit:
                with contextlib.suppress(Exception):
                    status, _, _ = await pool.request(
                        "POST", f"/api/calls/{call_id}/cancel/", token, {}
                    )
                    statuses[f"cancel {status}"] += 1

        await asyncio.wait(
            [asyncio.create_task(cancel(*d)) for d in deferred], timeout=max(drain, 30.0)
        )
    pool.close()
    return {
        "sent": sent,
        "attempted": total - skipped,
        "skipped": skipped,
        "statuses": dict(statuses),
        "bodies": bodies,
        "response_ms": response_ms,
        "send_lag_max_ms": round(max(lags) * 1000, 2) if lags else 0,
        "wall": round(time.monotonic() - t0, 3),
    }


async def relay_at_rate(
    template: str, senders: list[int], targets: list[int], rate: float, duration: float, prefix: str
) -> dict[str, Any]:
    """The baseline: messages sent over sockets of the bare relay to other sockets, at a rate."""
    socks = [(await open_socket(ws_url(template, i)))[0] for i in senders]
    drains = [asyncio.create_task(_drain(ws)) for ws in socks]
    sent: dict[str, float] = {}
    lags: list[float] = []
    total = int(rate * duration)
    t0 = time.monotonic() + 0.05
    for i in range(total):
        target = t0 + i / rate
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(time.monotonic() - target)
        tag = f"{prefix}:{i}"
        msg = json.dumps({"type": "relay", "to": targets[i % len(targets)], "tag": tag})
        sent[tag] = time.monotonic()
        await socks[i % len(socks)].send(msg)
    await asyncio.sleep(0.5)
    await asyncio.gather(*(ws.close() for ws in socks), return_exceptions=True)
    for task in drains:
        task.cancel()
    return {
        "sent": sent,
        "attempted": total,
        "skipped": 0,
        "statuses": {},
        "send_lag_max_ms": round(max(lags) * 1000, 2) if lags else 0,
    }


async def _drain(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        async for _ in ws:
            pass


# --- full call cycles --------------------------------------------------------------------------


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
                elif kind == "error":
                    self.errors.append(json.dumps(msg)[:300])


async def cycles(
    pairs: list[list[Any]], template: str, duration: float, prefix: str
) -> dict[str, Any]:
    """Closed loop per pair: invite, ring, ack, accept, end; as many cycles as fit in duration.

    ``pairs``: [caller index, callee index, caller server "host:port", callee server].
    """
    errors: list[str] = []
    pools: dict[str, HttpPool] = {}
    devices: list[tuple[Device, Device, HttpPool, HttpPool]] = []
    for caller, callee, caller_base, callee_base in pairs:
        for base in (caller_base, callee_base):
            pools.setdefault(base, HttpPool(base))
        try:
            wa = (await open_socket(ws_url(template.replace("{base}", caller_base), caller)))[0]
            wb = (await open_socket(ws_url(template.replace("{base}", callee_base), callee)))[0]
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


# --- the command loop --------------------------------------------------------------------------


async def main() -> None:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    listener = Listener()

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
                break
            elif cmd == "connect":
                reply(await listener.connect(**req))
            elif cmd == "storm":
                reply(await listener.storm(**req))
            elif cmd == "close_all":
                reply({"closed": await listener.close_all()})
            elif cmd == "peek":
                reply({"received": len(listener.recv)})
            elif cmd == "take":
                reply(listener.take())
            elif cmd == "invite":
                reply(await invite_at_rate(**req))
            elif cmd == "relay":
                reply(await relay_at_rate(**req))
            elif cmd == "cycles":
                reply(await cycles(**req))
            else:
                reply({"fatal": f"unknown command {cmd}"})
        except Exception as exc:
            reply({"fatal": repr(exc)})


if __name__ == "__main__":
    asyncio.run(main())
