"""How late do invitations time out? A benchmark script, not a test: it prints figures.

    .venv/bin/python bench/timer_lateness.py                # embedded: SQLite, in-process worker
    .venv/bin/python bench/timer_lateness.py --mode worker  # PostgreSQL, Redis, runworker
    .venv/bin/python bench/timer_lateness.py --calls 400 --json

It starts invitations through the real service (``services.invite``: the row, the CallEvent, the
``timer.schedule`` message on commit) with timeouts of 1, 2 and 3 seconds, lets the real timer
worker expire them, and measures, for every invitee, how long after its ``deadline`` the
``timeout`` event was written. Lateness therefore includes the worker's sleep precision, the
channel layer, the thread hop and the expiring transaction itself.

- ``embedded``: the layout of ``make run``: a SQLite file (WAL, IMMEDIATE), the in-memory channel
  layer, and the timer worker (``EagerWorker``) in this process's event loop, sharing the process
  with the code creating invitations, as Daphne would.
- ``worker``: the production layout: PostgreSQL (``DATABASE_URL``, a scratch database is created
  and dropped), Redis (``REDIS_URL``) and ``manage.py runworker call-timers`` as its own process.

Invitations are created while earlier ones already expire, so the worker is measured under the
load of the writes that feed it. API.md promises "within 1 s after their deadline". The default
(300 over 10 s) is a sustained 30 invitations/s; ``--spread 3`` is a burst that, in the embedded
layout, competes with the expiring for one process's CPU and SQLite's single writer.

Measured on a shared 2-core machine, load average 2-3, 300 invitations (ms after the deadline):

    layout     rate      median  p90   p99   worst
    embedded   30/s      10      14    19    21
    embedded   100/s     8       22    35    38
    worker     30/s      27      64    97    136
    worker     ~30/s*    32      69    119   143   (* --spread 3: creating was the limit)

Before SQLite writers queued on an in-process lock (callsite/db), the embedded 100/s burst ran
0.2-0.9 s late at load 3.5 and 1-4 s late at load 8-10: SQLite's busy polling starved the
expiring thread behind the one creating invitations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mode", choices=["embedded", "worker"], default="embedded")
    p.add_argument("--calls", type=int, default=300, help="invitations to time out (>= 200)")
    p.add_argument(
        "--spread", type=float, default=10.0, help="seconds over which invitations are started"
    )
    p.add_argument("--json", action="store_true", help="also print one JSON line of figures")
    return p.parse_args()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: an observed value, never an interpolation."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --- environment: chosen before Django is imported ------------------------------------------------


def prepare_environment(mode: str) -> dict[str, Any]:
    """Point callsite's settings at a scratch database and channel layer; returns cleanup info."""
    scratch: dict[str, Any] = {}
    os.environ["DJANGO_SETTINGS_MODULE"] = "callsite.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["CHANNEL_LAYER_PREFIX"] = f"callsite-timer-bench-{uuid.uuid4().hex[:8]}"
    if mode == "embedded":
        workdir = tempfile.mkdtemp(prefix="callsite-timer-bench-")
        os.environ["SQLITE_PATH"] = str(Path(workdir) / "bench.sqlite3")
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
        scratch["workdir"] = workdir
    else:
        import psycopg

        name = f"callsite_timer_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        scratch["pg_db"] = name
        os.environ["DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        os.environ["REDIS_URL"] = REDIS_URL
    return scratch


def cleanup_environment(scratch: dict[str, Any]) -> None:
    if "workdir" in scratch:
        import shutil

        shutil.rmtree(scratch["workdir"], ignore_errors=True)
    if "pg_db" in scratch:
        from django.db import connections

        connections.close_all()
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch["pg_db"]}" WITH (FORCE)')


# --- the run --------------------------------------------------------------------------------------


def setup_database(calls: int) -> list[tuple[Any, Any]]:
    """Migrate and create one caller and one callee per invitation (each rings in one call)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    model = get_user_model()
    model.objects.bulk_create(
        [model(username=f"caller{i}") for i in range(calls)]
        + [model(username=f"callee{i}") for i in range(calls)]
    )
    users = {u.username: u for u in model.objects.all()}
    return [(users[f"caller{i}"], users[f"callee{i}"]) for i in range(calls)]


def start_invitations(pairs: list[tuple[Any, Any]], spread: float) -> None:
    """Invite at an even pace over ``spread`` seconds, timeouts cycling through 1, 2, 3 s."""
    from django.db import close_old_connections

    from invitations import services

    started = time.monotonic()
    for i, (caller, callee) in enumerate(pairs):
        wait = started + spread * i / len(pairs) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        services.invite(inviter=caller, invitees=[callee.username], timeout=1 + i % 3)
    close_old_connections()


def pending() -> int:
    from invitations.models import RINGING_STATES, Participant

    return Participant.objects.filter(role="invitee", state__in=RINGING_STATES).count()


def lateness_seconds() -> tuple[list[float], int]:
    """Per invitee: timeout event time minus the deadline it was given. Also: duplicate timeouts."""
    from invitations.models import CallEvent

    deadlines = {
        (e.call_id, e.subject_id): e.data["deadline"]
        for e in CallEvent.objects.filter(kind="invited").only("call_id", "subject_id", "data")
    }
    from datetime import datetime

    late: list[float] = []
    seen: set[tuple[Any, Any]] = set()
    duplicates = 0
    for call_id, subject_id, at in CallEvent.objects.filter(kind="timeout").values_list(
        "call_id", "subject_id", "created_at"
    ):
        key = (call_id, subject_id)
        duplicates += key in seen
        seen.add(key)
        late.append((at - datetime.fromisoformat(deadlines[key])).total_seconds())
    return late, duplicates


async def run_embedded(pairs: list[tuple[Any, Any]], spread: float) -> dict[str, Any]:
    from asgiref.sync import sync_to_async

    from invitations import timers

    worker_task = asyncio.ensure_future(timers.run_embedded_worker())
    await asyncio.sleep(0.2)  # the worker loads (nothing) from the database and listens
    t0 = time.monotonic()
    await sync_to_async(start_invitations, thread_sensitive=True)(pairs, spread)
    created = time.monotonic() - t0
    deadline = time.monotonic() + 3 + 5
    while await sync_to_async(pending)() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    left = await sync_to_async(pending)()
    scheduler = timers.RUNNING[0] if timers.RUNNING else None
    worker_task.cancel()
    for task in asyncio.all_tasks() - {asyncio.current_task()}:
        task.cancel()
    return {
        "create_seconds": created,
        "left_ringing": left,
        "worker_fired": scheduler.fired if scheduler else None,
    }


def run_worker_process(pairs: list[tuple[Any, Any]], spread: float) -> dict[str, Any]:
    env = {**os.environ, "LOG_LEVEL": "INFO"}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "call-timers"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        started = time.monotonic()
        for line in proc.stderr:  # the worker logs once it watches the database
            if "timer worker watching" in line:
                break
            if time.monotonic() - started > 30:
                raise RuntimeError("the timer worker did not start")
        t0 = time.monotonic()
        start_invitations(pairs, spread)
        created = time.monotonic() - t0
        deadline = time.monotonic() + 3 + 5
        while pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        return {"create_seconds": created, "left_ringing": pending(), "worker_fired": None}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    args = parse_args()
    if args.calls < 200:
        print("use at least 200 invitations for a meaningful p99", file=sys.stderr)
        return 2
    scratch = prepare_environment(args.mode)
    # The machines are shared: the load average says how much of a figure is this code.
    load_before = round(os.getloadavg()[0], 2)
    try:
        import django

        django.setup()
        from django.conf import settings

        pairs = setup_database(args.calls)
        if args.mode == "embedded":
            extra = asyncio.run(run_embedded(pairs, args.spread))
        else:
            extra = run_worker_process(pairs, args.spread)
        late, duplicates = lateness_seconds()
        db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    finally:
        cleanup_environment(scratch)

    figures = {
        "mode": args.mode,
        "database": db,
        "channel_layer": layer,
        "invitations": args.calls,
        "timed_out": len(late),
        "duplicate_timeouts": duplicates,
        "median_ms": round(statistics.median(late) * 1000, 1) if late else None,
        "p90_ms": round(percentile(late, 90) * 1000, 1) if late else None,
        "p99_ms": round(percentile(late, 99) * 1000, 1) if late else None,
        "worst_ms": round(max(late) * 1000, 1) if late else None,
        "earliest_ms": round(min(late) * 1000, 1) if late else None,
        "over_1s": sum(1 for x in late if x >= 1.0),
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 2),
        **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in extra.items()},
    }
    print(f"timer lateness, {figures['mode']} ({db}, {layer})")
    print(
        f"  invitations      {args.calls} (timeouts 1-3 s, paced over {args.spread} s,"
        f" took {figures['create_seconds']} s)"
    )
    print(f"  load average     {figures['load_before']} before, {figures['load_after']} after")
    print(f"  timed out        {len(late)}  (left ringing: {extra['left_ringing']})")
    print(f"  duplicates       {duplicates}")
    for key in ("earliest_ms", "median_ms", "p90_ms", "p99_ms", "worst_ms"):
        print(f"  {key[:-3]:<16} {figures[key]} ms")
    print(f"  >= 1 s late      {figures['over_1s']}")
    if args.json:
        print(json.dumps(figures))
    ok = len(late) == args.calls and duplicates == 0 and figures["over_1s"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
