"""How long from the REST invite returning to the callee's socket receiving the invitation?

A script, not a test: it prints a table and never fails on a timing.

    .venv/bin/python bench/invite_latency.py                  # both setups, 500 invitations each
    .venv/bin/python bench/invite_latency.py --mode embedded --invitations 1000
    .venv/bin/python bench/invite_latency.py --mode redis --pairs 20

Setups (each starts its own processes on free ports and cleans up after itself):

- ``embedded``: one ``manage.py serve`` (Daphne, in-memory channel layer, timers in-process) on
  a fresh SQLite file, as ``make run`` runs.
- ``redis``: ``manage.py serve --timers external`` twice (A and B) plus ``manage.py runworker
  call-timers``, sharing Redis (a prefix of their own) and a PostgreSQL database created for the
  run (``--pg-url`` names the server). Inviters talk to A, callees' sockets sit on B, so every
  invitation crosses processes through Redis.

Each of ``--pairs`` caller/callee pairs loops: the caller (socket connected, so no caller-offline
countdown) POSTs /api/calls/, the callee's socket waits for ``call.invitation_received``, the
caller cancels, both wait for ``call.ended``. Two figures per invitation, from one monotonic clock:
``after_return``, from the REST response returning to the event (negative when the event beats
the response, since services publish on commit, before the response is written), and
``after_send``, from the request leaving to the event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: dict[str, int] = {}

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        return out.stdout

    def start(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def serve(self, name: str, *extra: str) -> None:
        self.ports[name] = free_port()
        self.start(name, "serve", "--port", str(self.ports[name]), *extra)

    def wait_ready(self) -> None:
        end = time.monotonic() + 60
        for port in self.ports.values():
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > end:
                        msg = f"server on {port} did not start; logs in {self.logs}"
                        raise SystemExit(msg) from None
                    time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def create_users(self, pairs: int) -> dict[str, str]:
        names = [f"caller{i}" for i in range(pairs)] + [f"callee{i}" for i in range(pairs)]
        script = (
            "import json\n"
            "from django.contrib.auth.models import User\n"
            "from rest_framework.authtoken.models import Token\n"
            f"names = {names!r}\n"
            "users = [User.objects.create_user(n, password='pw') for n in names]\n"
            "print(json.dumps({u.username: Token.objects.create(user=u).key for u in users}))"
        )
        return json.loads(self.manage("shell", "-c", script).strip().splitlines()[-1])


async def pair_loop(
    i: int,
    count: int,
    tokens: dict[str, str],
    rest_url: str,
    ws_caller: str,
    ws_callee: str,
    samples: list[tuple[float, float]],
) -> None:
    caller, callee = f"caller{i}", f"callee{i}"
    received: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
    ended: asyncio.Queue[str] = asyncio.Queue()

    async def reader(ws: Any, who: str) -> None:
        async for raw in ws:
            now = time.perf_counter()
            event = json.loads(raw)
            if event["type"] == "call.invitation_received":
                received.put_nowait((now, event))
            elif event["type"] == "call.ended" and who == "caller":
                ended.put_nowait(event["call_id"])

    ws1 = await websockets.connect(f"{ws_caller}/ws/?token={tokens[caller]}&device_id=bench")
    ws2 = await websockets.connect(f"{ws_callee}/ws/?token={tokens[callee]}&device_id=bench")
    tasks = [asyncio.create_task(reader(ws1, "caller")), asyncio.create_task(reader(ws2, "callee"))]
    headers = {"Authorization": f"Token {tokens[caller]}"}
    async with httpx.AsyncClient(base_url=rest_url, headers=headers, timeout=30) as http:
        try:
            for _ in range(count):
                sent = time.perf_counter()
                res = await http.post("/api/calls/", json={"invitees": [callee], "timeout": 60})
                returned = time.perf_counter()
                if res.status_code != 201:
                    raise SystemExit(f"invite failed: {res.status_code} {res.text}")
                call_id = res.json()["call"]["id"]
                at, event = await asyncio.wait_for(received.get(), 30)
                assert event["call_id"] == call_id, (event["call_id"], call_id)
                samples.append((at - returned, at - sent))
                res = await http.post(f"/api/calls/{call_id}/cancel/", json={})
                assert res.status_code == 200, res.text
                while await asyncio.wait_for(ended.get(), 30) != call_id:
                    pass
        finally:
            for t in tasks:
                t.cancel()
            await ws1.close()
            await ws2.close()


async def measure(
    total: int, pairs: int, tokens: dict[str, str], rest: str, caller_ws: str, callee_ws: str
) -> list[tuple[float, float]]:
    samples: list[tuple[float, float]] = []
    per_pair = [total // pairs + (1 if i < total % pairs else 0) for i in range(pairs)]
    await asyncio.gather(
        *(
            pair_loop(i, n, tokens, rest, caller_ws, callee_ws, samples)
            for i, n in enumerate(per_pair)
        )
    )
    return samples


def run_setup(mode: str, args: argparse.Namespace) -> list[tuple[float, float]]:
    tmp = Path(tempfile.mkdtemp(prefix=f"callsite-latency-{mode}-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "callsite.settings",
        "CALLSITE_VAR_DIR": str(tmp),
        "THROTTLE_INVITATIONS": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }
    for key in ("DATABASE_URL", "REDIS_URL"):
        env.pop(key, None)
    db_name = prefix = None
    admin = ""
    if mode == "embedded":
        env["SQLITE_PATH"] = str(tmp / "bench.sqlite3")
    else:
        import psycopg

        parts = urlsplit(args.pg_url)
        db_name = f"callsite_latency_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db_name}"')
        prefix = f"callsite-latency-{uuid.uuid4().hex[:8]}"
        env.update(
            DATABASE_URL=urlunsplit(parts._replace(path=f"/{db_name}")),
            REDIS_URL=args.redis_url,
            CHANNEL_LAYER_PREFIX=prefix,
        )
    procs = Processes(env, tmp)
    try:
        procs.manage("migrate", "--noinput", "-v", "0")
        tokens = procs.create_users(args.pairs)
        if mode == "embedded":
            procs.serve("A")
        else:
            procs.serve("A", "--timers", "external")
            procs.serve("B", "--timers", "external")
            procs.start("timers", "runworker", "call-timers")
        procs.wait_ready()
        a = procs.ports["A"]
        b = procs.ports.get("B", a)
        rest = f"http://127.0.0.1:{a}"
        callee = f"ws://127.0.0.1:{b}"
        return asyncio.run(
            measure(args.invitations, args.pairs, tokens, rest, f"ws://127.0.0.1:{a}", callee)
        )
    finally:
        procs.stop()
        if db_name:
            import psycopg

            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        if prefix:
            import redis

            r = redis.Redis.from_url(args.redis_url)
            for key in r.scan_iter(f"{prefix}*", count=1000):
                r.delete(key)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["embedded", "redis", "both"], default="both")
    parser.add_argument("--invitations", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=10, help="caller/callee pairs in parallel")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    modes = ["embedded", "redis"] if args.mode == "both" else [args.mode]
    rows = []
    for mode in modes:
        started = time.perf_counter()
        samples = run_setup(mode, args)
        wall = time.perf_counter() - started
        after_return = [s[0] * 1000 for s in samples]
        after_send = [s[1] * 1000 for s in samples]
        rows.append((mode, len(samples), after_return, after_send, wall))
    print(f"\ninvite -> call.invitation_received, {args.pairs} pairs in parallel (ms)")
    header = f"{'setup':<10}{'n':>6}  {'median':>8}{'p99':>8}{'max':>8}   "
    print(header + f"{'median':>8}{'p99':>8}   (after REST returned | after REST sent)")
    for mode, n, ret, snd, wall in rows:
        print(
            f"{mode:<10}{n:>6}  {statistics.median(ret):>8.2f}{pct(ret, 99):>8.2f}"
            f"{max(ret):>8.2f}   {statistics.median(snd):>8.2f}{pct(snd, 99):>8.2f}"
            f"   ({wall:.0f} s)"
        )


if __name__ == "__main__":
    main()
