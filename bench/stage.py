"""The orchestrator's working parts: results, the running processes, database chores, measuring.

Nothing here imports Django: database chores run bench/djangotool.py in a subprocess with the
topology's environment, or read the bench database directly.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    HOST,
    PG_ADMIN_URL,
    PG_BENCH_DB,
    PYTHON,
    ROOT,
    Client,
    CpuMeter,
    Proc,
    ProcessGroup,
    Topology,
    free_port,
    log,
    relay_args,
    serve_args,
    summary_ms,
)
from plans import Plan


@dataclass
class Results:
    """Every figure of a run, by table; ``report.py`` turns them into markdown, JSON and a plot."""

    plan: Plan
    rows: list[dict[str, Any]] = field(default_factory=list)  # scenarios 1/5 and the relay
    storms: list[dict[str, Any]] = field(default_factory=list)  # connect storms
    cycles: list[dict[str, Any]] = field(default_factory=list)
    idle: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    push: list[dict[str, Any]] = field(default_factory=list)  # ring-push latency (issue 12)
    latencies: dict[str, list[float]] = field(default_factory=dict)  # for the plot
    notes: list[str] = field(default_factory=list)
    seq: int = 0

    def record(
        self, table: list[dict[str, Any]], row: dict[str, Any], key: str, lat: list[float]
    ) -> None:
        """A row of ``table``, and its latencies (seconds) for the plot under ``key``."""
        table.append(row)
        self.latencies[key] = lat

    def tag(self, label: str) -> str:
        """A prefix no other phase of the run uses, to match invitations to their rings."""
        self.seq += 1
        return f"{label}{self.seq}"


@dataclass
class Stage:
    """One topology's running servers and relays, and the clients that drive them."""

    topo: Topology
    servers: list[Proc]
    worker: Proc | None
    relays: list[Proc]
    listener: Client
    inviter: Client
    callers: list[int]
    service_groups: dict[str, Any]
    rate_secs: float = 1.0
    caller_offset: int = 0

    def next_callers(self, rate: int) -> list[int]:
        """The callers of a rate phase: the next ones in turn, so a call an earlier phase could
        not cancel in time (a slow server) does not make its caller busy here."""
        need = rate * int(max(1, self.rate_secs))
        start = self.caller_offset % len(self.callers)
        self.caller_offset += need
        return self.callers[start:] + self.callers[:start]

    @property
    def base_a(self) -> str:
        return f"{HOST}:{self.servers[0].port}"

    def ws(self, server: Proc) -> str:
        return ws_template(server)

    def cpu_groups(self) -> dict[str, Any]:
        groups: dict[str, Any] = {f"server {s.name[-1]}": [s.pid] for s in self.servers}
        if self.worker is not None:
            groups["timer worker"] = [self.worker.pid]
        groups["clients"] = [self.listener.pid, self.inviter.pid]
        return {**groups, **self.service_groups}


def ws_template(server: Proc) -> str:
    """The socket URL of a server, for ``bench/sockets.ws_url`` to fill in per user."""
    return f"ws://{HOST}:{server.port}/ws/?token={{token}}"


def start_server(procs: ProcessGroup, topo: Topology, name: str) -> Proc:
    """``manage.py serve`` as ``make run`` runs it (embedded), or without timers (production)."""
    port = free_port()
    return procs.start(f"{topo.name}-{name}", serve_args(port, serve_mode(topo)), topo.env, port)


def start_timer_worker(procs: ProcessGroup, topo: Topology, name: str) -> Proc:
    args = [PYTHON, "manage.py", "runworker", "call-timers"]
    return procs.start(f"{topo.name}-{name}", args, topo.env)


def start_relay(procs: ProcessGroup, topo: Topology, name: str) -> Proc:
    """The bare relay on the topology's channel layer (in memory, or the same Redis)."""
    port = free_port()
    return procs.start(f"{topo.name}-{name}", relay_args(port), relay_env(topo), port)


def relay_env(topo: Topology) -> dict[str, str]:
    env = {k: v for k, v in topo.env.items() if k != "DJANGO_SETTINGS_MODULE"}
    if topo.layer != "redis":
        env.pop("REDIS_URL", None)
    return env


def serve_mode(topo: Topology) -> str:
    return "external" if topo.production else "embedded"


# --- database chores ------------------------------------------------------------------------


def reset_database(topo: Topology) -> None:
    if topo.db == "sqlite":
        path = Path(topo.env["SQLITE_PATH"])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(
        PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True
    ) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{PG_BENCH_DB}"')


def flush_redis_prefix(topo: Topology) -> None:
    if topo.layer != "redis":
        return
    import redis

    client = redis.Redis.from_url(topo.env["REDIS_URL"])
    prefix = topo.env["CHANNEL_LAYER_PREFIX"]
    for _ in range(1000):  # bounded: a few thousand keys at most
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))[:5000]
        if not keys:
            break
        client.delete(*keys)
    client.close()


def djangotool(topo: Topology, *args: str, timeout: float = 600) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, str(ROOT / "bench" / "djangotool.py"), *args],
        cwd=ROOT,
        env=topo.env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"djangotool {args[0]} failed:\n{out.stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return result


def count_timeouts(topo: Topology, batch: str) -> int:
    sql = (
        "SELECT COUNT(*) FROM invitations_callevent e JOIN invitations_call c ON c.id = e.call_id "
        "WHERE e.kind = 'timeout' AND c.extended_data LIKE %s"
    )
    like = f"bench-timer:{batch}:%"
    if topo.db == "sqlite":
        with sqlite3.connect(topo.env["SQLITE_PATH"], timeout=30) as c:
            return int(c.execute(sql.replace("%s", "?"), (like,)).fetchone()[0])
    import psycopg

    with psycopg.connect(topo.env["DATABASE_URL"].replace("postgres://", "postgresql://")) as c:
        row = c.execute(sql, (like,)).fetchone()
        return int(row[0]) if row else 0


# --- measuring ------------------------------------------------------------------------------


def settle(pids: list[int], limit: float) -> float:
    """Wait until each process is idle (below 15% of a core for 1 s); returns the seconds waited.

    After many sockets connect, each connect's presence.changed may still fan out for a while,
    and after they close, their disconnects and presence graces; a phase started before that
    would measure the backlog, not the path. Each process must be quiet: one busy process beside
    idle ones is still a backlog.
    """
    import psutil

    procs = [psutil.Process(p) for p in pids]

    def used() -> list[float]:
        return [p.cpu_times().user + p.cpu_times().system for p in procs]

    t0 = time.monotonic()
    quiet = 0
    while time.monotonic() - t0 < limit and quiet < 2:
        before = used()
        time.sleep(0.5)
        busy = max((b - a for a, b in zip(before, used(), strict=True)), default=0.0)
        quiet = quiet + 1 if busy / 0.5 < 0.15 else 0
    return round(time.monotonic() - t0, 1)


def wait_for_rings(listener: Client, sent: dict[str, float], bound: float) -> dict[str, Any]:
    """Wait until every sent tag rang, or ``bound`` s after the last send; take what arrived."""
    deadline = max(sent.values(), default=time.monotonic()) + bound
    while time.monotonic() < deadline:
        if int(listener.call("peek")["received"]) >= len(sent):
            break
        time.sleep(0.25)
    return listener.call("take")


def ring_row(
    sent: dict[str, float], got: dict[str, Any], bound: float
) -> tuple[list[float], dict[str, Any]]:
    """Latencies of every ring, and the row's counts: not rung within ``bound`` is lost.

    The percentiles include the late rings, so a p99 is never flattered by dropping them.
    """
    lat = [got["recv"][tag] - at for tag, at in sent.items() if tag in got["recv"]]
    within = [v for v in lat if v <= bound]
    counts = {
        **summary_ms(lat),
        "sent": len(sent),
        "lost": len(sent) - len(within),
        "late": len(lat) - len(within),
        "ws_errors": got["error_count"],
        "subscribe_errors": got.get("subscribe_errors", 0),
        "frames": got.get("frames", {}),
    }
    return lat, counts


def measure_rate(
    res: Results,
    *,
    topo: Topology,
    scenario: str,
    listener: Client,
    sender: Client,
    n: int,
    rate: int,
    cmd: str,
    cpu: CpuMeter,
    secs: float | None = None,
    **args: Any,
) -> dict[str, Any]:
    """One rate phase: send at ``rate`` for ``secs`` (the plan's), then wait for the rings."""
    plan = res.plan
    listener.call("take")
    if cmd == "invite" and args.get("cancel_after", 0) < 0:
        args["keep"] = True  # cancelled below, out of the CPU measured for the invitations
    cpu.start()
    duration = secs or plan.rate_secs
    sent = sender.call(cmd, rate=rate, duration=duration, prefix=res.tag(scenario), **args)
    got = wait_for_rings(listener, sent["sent"], plan.lost_after)
    usage = cpu.stop()
    if sent.get("open"):
        sender.call("cancel_calls", base=args["base"], calls=sent["open"])
    lat, counts = ring_row(sent["sent"], got, plan.lost_after)
    row = {
        "scenario": scenario,
        "topology": topo.name,
        "n": n,
        "rate": rate,
        **counts,
        "skipped": sent["skipped"],
        "failed": sent["attempted"] - len(sent["sent"]),
        "statuses": sent["statuses"],
        "send_lag_max_ms": sent["send_lag_max_ms"],
        "cpu": usage,
        "cpu_wall_s": round(cpu.wall, 2),
    }
    if sent.get("response_ms"):
        row["rest_p50_ms"] = summary_ms([v / 1000 for v in sent["response_ms"]])["p50"]
    if sent.get("bodies"):
        res.notes.append(f"{scenario} {topo.name} {rate}/s: {sent['bodies'][:2]}")
    res.record(res.rows, row, f"{scenario} {topo.name} N={n} {rate}/s", lat)
    log(
        f"  {scenario:<9} {topo.name:<10} N={n:<6} {rate:>4}/s  p50 {row['p50']:>7} ms"
        f"  p99 {row['p99']:>7} ms  max {row['max']:>7} ms  sent {row['sent']:>5}"
        f"  lost {row['lost']}  failed {row['failed']}  skipped {row['skipped']}  cpu {usage}"
    )
    return row
