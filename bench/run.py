#!/usr/bin/env python3
"""The benchmark suite of callsite (issue 5): run it with ``make bench`` or ``make bench-full``.

    python bench/run.py --quick     # small N and short phases; under 3 minutes
    python bench/run.py --full      # 1,000 and 10,000 sockets, 30 s cycles, 100,000 timers

For each topology (embedded: one ``manage.py serve``, SQLite, in-memory layer, timers in process;
production: two ``serve --timers external`` + ``runworker call-timers``, PostgreSQL and Redis) it
measures, with clients in separate processes speaking real HTTP and WebSockets:

1. invite to ring at fixed rates with N idle users connected, beside a bare Channels relay;
2. full call cycles (invite, ack, accept, end) in a closed loop, with the CPU of every process;
3. memory per idle socket and the connect rate of a reconnect storm;
4. timer accuracy with many pending invitations inserted in bulk;
5. (production) caller and callee on different server processes, beside a cross-process relay.

It prints the tables, writes bench/results/ (markdown, JSON, PNG plot) and refreshes the results
section of bench/README.md. Timings never fail the run: only a broken setup does.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    HOST,
    PG_ADMIN_URL,
    PG_BENCH_DB,
    PYTHON,
    RESULTS,
    ROOT,
    TMP,
    Client,
    CpuMeter,
    ProcessGroup,
    Topology,
    embedded_topology,
    free_port,
    log,
    machine_description,
    production_topology,
    raise_fd_limit,
    relay_args,
    rss_bytes,
    serve_args,
    summary_ms,
)


@dataclass
class Plan:
    mode: str
    levels: list[int]  # idle sockets connected to one server: memory measured at each
    s1_levels: list[int]  # the levels at which scenario 1 runs its rates
    rates: list[int]
    rate_secs: float
    callers: int
    cross_users: int  # scenario 5: callees connected to the other server
    baseline_users: int
    cycle_pairs: int
    cycle_secs: float
    timer_counts: list[int]
    timer_spread: float
    timer_max_wait: float
    drain: float = 10.0  # how long a rate phase waits for slow answers
    # Scenario 1/5: cancel each call this long after its invite (users are reused, the server
    # takes twice the writes of the rate), or, if negative, after the sending window only.
    cancel_after: float = -1.0
    settle: float = 30.0  # how long to wait for the servers to go idle after connecting
    topologies: list[str] = field(default_factory=lambda: ["embedded", "production"])
    # Which parts run (--parts): the idle sockets are always connected and measured.
    parts: set[str] = field(default_factory=lambda: set(PARTS))
    # Parts left out of the production topology (its reconnect storm alone takes ~25 s, which
    # --quick cannot afford within 3 minutes; embedded still measures it).
    production_skip: set[str] = field(default_factory=set)


PARTS = ("invite", "storm", "cross", "relay", "cycles", "timers")


PLANS = {
    "quick": Plan(
        mode="quick",
        levels=[500],
        s1_levels=[500],
        rates=[50, 200],  # 500/s only in --full: its backlog alone took ~20 s per scenario
        rate_secs=1.0,
        callers=500,
        cross_users=500,
        baseline_users=500,
        cycle_pairs=16,
        cycle_secs=5.0,
        timer_counts=[2000],
        timer_spread=5.0,
        timer_max_wait=20.0,
        production_skip={"storm"},
    ),
    "full": Plan(
        mode="full",
        levels=[1000, 5000, 10000],
        s1_levels=[1000, 10000],
        rates=[50, 200, 500],
        rate_secs=10.0,
        callers=1000,
        cross_users=1000,
        baseline_users=1000,
        cycle_pairs=48,
        cycle_secs=30.0,
        timer_counts=[10000, 100000],
        timer_spread=20.0,
        timer_max_wait=420.0,
        drain=60.0,
        cancel_after=0.3,  # 10 s at 500/s needs more users than connected: reuse them
        settle=300.0,
    ),
}


# --- setup --------------------------------------------------------------------------------------


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


# --- measurements -------------------------------------------------------------------------------


def settle(pids: list[int], limit: float) -> float:
    """Wait until the servers are idle (below 15% of a core for 1 s); returns the seconds waited.

    After many sockets connect, each connect's presence.changed still fans out to every socket
    for a while; a rate phase started before that would measure the backlog, not the path.
    """
    import psutil

    procs = [psutil.Process(p) for p in pids]
    t0 = time.monotonic()
    quiet = 0
    while time.monotonic() - t0 < limit and quiet < 2:
        before = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        time.sleep(0.5)
        used = sum(p.cpu_times().user + p.cpu_times().system for p in procs) - before
        quiet = quiet + 1 if used / 0.5 < 0.15 * len(procs) else 0
    return round(time.monotonic() - t0, 1)


def join_latencies(sent: dict[str, float], recv: dict[str, float]) -> tuple[list[float], int]:
    lat = [recv[tag] - at for tag, at in sent.items() if tag in recv]
    return lat, len(sent) - len(lat)


class Runner:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rows: list[dict[str, Any]] = []  # scenario 1/5 and baselines
        self.cycles: list[dict[str, Any]] = []
        self.idle: list[dict[str, Any]] = []
        self.timers: list[dict[str, Any]] = []
        self.latencies: dict[str, list[float]] = {}  # for the plot
        self.notes: list[str] = []
        self.prefix_seq = 0

    def tag(self, label: str) -> str:
        self.prefix_seq += 1
        return f"{label}{self.prefix_seq}"

    def rate_run(
        self,
        *,
        topo: Topology,
        scenario: str,
        label: str,
        listener: Client,
        sender: Client,
        n: int,
        rate: int,
        cmd: str,
        cpu: CpuMeter,
        **args: Any,
    ) -> dict[str, Any]:
        prefix = self.tag(label)
        listener.call("take")
        cpu.start()
        res = sender.call(cmd, rate=rate, duration=self.plan.rate_secs, prefix=prefix, **args)
        usage = cpu.stop()
        # Stragglers: wait while deliveries still arrive (at most 15 s).
        last, still = -1, 0.0
        for _ in range(60):
            got_n = int(listener.call("peek")["received"])
            if got_n >= len(res["sent"]) or still >= 1.0:
                break
            still = still + 0.25 if got_n == last else 0.0
            last = got_n
            time.sleep(0.25)
        got = listener.call("take")
        lat, lost = join_latencies(res["sent"], got["recv"])
        row = {
            "scenario": scenario,
            "topology": topo.name,
            "n": n,
            "rate": rate,
            **summary_ms(lat),
            "sent": len(res["sent"]),
            "lost": lost,
            "skipped": res["skipped"],
            "failed": res["attempted"] - len(res["sent"]),
            "statuses": res["statuses"],
            "send_lag_max_ms": res["send_lag_max_ms"],
            "ws_errors": got["error_count"],
            "cpu": usage,
        }
        if res.get("response_ms"):
            row["rest_p50_ms"] = summary_ms([v / 1000 for v in res["response_ms"]])["p50"]
        if res.get("bodies"):
            self.notes.append(f"{scenario} {topo.name} {rate}/s: {res['bodies'][:2]}")
        self.rows.append(row)
        self.latencies[f"{scenario} {topo.name} N={n} {rate}/s"] = lat
        log(
            f"  {scenario:<9} {topo.name:<10} N={n:<6} {rate:>4}/s  p50 {row['p50']:>7} ms"
            f"  p99 {row['p99']:>7} ms  max {row['max']:>7} ms  sent {row['sent']:>5}"
            f"  lost {lost}  failed {row['failed']}  skipped {row['skipped']}  cpu {usage}"
        )
        return row

    # --- one topology ---------------------------------------------------------------------------

    def run_topology(self, topo: Topology) -> None:
        plan = self.plan
        log(f"== {topo.name}: resetting the database")
        reset_database(topo)
        flush_redis_prefix(topo)
        # Users: [0, L) idle callees on server A, [L, L+C) callers, then cross-process callees,
        # then cycle pairs.
        top = max(plan.levels)
        callers = list(range(top, top + plan.callers))
        cross = list(range(top + plan.callers, top + plan.callers + plan.cross_users))
        pair_base = top + plan.callers + plan.cross_users
        users = pair_base + 2 * plan.cycle_pairs
        t0 = time.monotonic()
        info = djangotool(topo, "setup", "--users", str(users))
        log(f"   migrated, {users} users and tokens in {time.monotonic() - t0:.1f} s ({info})")
        if plan.parts <= {"timers"}:  # timers only: no servers, no sockets
            if plan.parts:
                self._timers(topo)
            return

        procs = ProcessGroup()
        try:
            a_port = free_port()
            a = procs.start(
                f"{topo.name}-server-a",
                serve_args(a_port, "external" if topo.production else "embedded"),
                topo.env,
                a_port,
            )
            servers = [a]
            worker = None
            if topo.production:
                b_port = free_port()
                servers.append(
                    procs.start(
                        f"{topo.name}-server-b", serve_args(b_port, "external"), topo.env, b_port
                    )
                )
                worker = procs.start(
                    f"{topo.name}-worker",
                    [PYTHON, "manage.py", "runworker", "call-timers"],
                    topo.env,
                )
            relay_env = {k: v for k, v in topo.env.items() if k != "DJANGO_SETTINGS_MODULE"}
            if topo.layer != "redis":
                relay_env.pop("REDIS_URL", None)
            relays = []
            for name in ["relay-a", "relay-b"] if topo.production else ["relay-a"]:
                port = free_port()
                relays.append(procs.start(f"{topo.name}-{name}", relay_args(port), relay_env, port))
            self._scenarios(topo, servers, worker, relays, callers, cross, pair_base)
        finally:
            procs.stop_all()
        if "timers" in plan.parts:
            self._timers(topo)

    def _scenarios(
        self,
        topo: Topology,
        servers: list[Any],
        worker: Any,
        relays: list[Any],
        callers: list[int],
        cross: list[int],
        pair_base: int,
    ) -> None:
        plan = self.plan
        a = servers[0]
        base_a = f"{HOST}:{a.port}"
        ws_a = f"ws://{base_a}/ws/?token={{token}}&presence=0"
        service_groups: dict[str, Any] = {}
        if topo.production:
            service_groups = {"postgres": "postgres", "redis": "redis-server"}
        listener = Client(f"{topo.name}-listener")
        inviter = Client(f"{topo.name}-inviter")
        extra: list[Client] = []
        try:
            # Warm up: imports, connections and caches of the server.
            listener.call("connect", template=ws_a, first=0, last=10, concurrency=10)
            inviter.call(
                "invite",
                base=base_a,
                callers=callers[:20],
                callees=list(range(10)),
                rate=20,
                duration=1.0,
                prefix="warm",
                cancel_after=0.2,
            )
            listener.call("take")
            time.sleep(1.0)
            rss0 = rss_bytes(a.pid)
            connected = 10
            groups: dict[str, Any] = {f"server {s.name[-1]}": [s.pid] for s in servers}
            if worker is not None:
                groups["timer worker"] = [worker.pid]
            groups.update({"clients": [listener.pid, inviter.pid], **service_groups})
            cpu = CpuMeter(groups)
            for level in plan.levels:
                res = listener.call(
                    "connect", template=ws_a, first=connected, last=level, concurrency=200
                )
                connected = level
                settle_s = settle([s.pid for s in servers], plan.settle)
                rss = rss_bytes(a.pid)
                row = {
                    "topology": topo.name,
                    "n": level,
                    "connect_rate": res["rate"],
                    "failed": res["failed"],
                    "rss_mib": round(rss / 2**20, 1),
                    "kib_per_socket": round((rss - rss0) / 1024 / max(1, level - 10), 1),
                    "settle_s": settle_s,
                }
                self.idle.append(row)
                log(
                    f"  idle      {topo.name:<10} N={level:<6} rss {row['rss_mib']} MiB"
                    f"  {row['kib_per_socket']} KiB/socket  connect {res['rate']}/s"
                    f"  busy {settle_s} s after"
                    f"  failed {res['failed']} first={res['first_types']} {res['errors'][:1]}"
                )
                if level in plan.s1_levels and "invite" in plan.parts:
                    for rate in plan.rates:
                        self.rate_run(
                            topo=topo,
                            scenario="invite",
                            label="i",
                            listener=listener,
                            sender=inviter,
                            n=level,
                            rate=rate,
                            cmd="invite",
                            cpu=cpu,
                            base=base_a,
                            callers=callers,
                            callees=list(range(level)),
                            cancel_after=plan.cancel_after,
                            drain=plan.drain,
                        )
            # Reconnect storm: every socket cut at once, then all reconnect together.
            if "storm" in plan.parts and not (topo.production and "storm" in plan.production_skip):
                storm = listener.call("storm", concurrency=1000)
                time.sleep(1.0)
                self.idle[-1].update(
                    storm_rate=storm["rate"],
                    storm_secs=storm["secs"],
                    storm_failed=storm["failed"],
                    rss_after_storm_mib=round(rss_bytes(a.pid) / 2**20, 1),
                )
                log(f"  storm     {topo.name:<10} {storm}")
            listener.call("close_all")

            # Scenario 5: callees on server B, invitations through server A.
            if len(servers) > 1 and "cross" in plan.parts:
                b = servers[1]
                ws_b = f"ws://{HOST}:{b.port}/ws/?token={{token}}&presence=0"
                listener.call(
                    "connect", template=ws_b, first=cross[0], last=cross[-1] + 1, concurrency=200
                )
                settle([s.pid for s in servers], plan.settle)
                for rate in plan.rates:
                    self.rate_run(
                        topo=topo,
                        scenario="cross",
                        label="x",
                        listener=listener,
                        sender=inviter,
                        n=len(cross),
                        rate=rate,
                        cmd="invite",
                        cpu=cpu,
                        base=base_a,
                        callers=callers,
                        callees=cross,
                        cancel_after=plan.cancel_after,
                    )
                listener.call("close_all")

            # The baseline relay, same process (and across processes in production).
            relay_groups = {f"relay {r.name[-1]}": [r.pid] for r in relays}
            relay_groups.update({"clients": [listener.pid, inviter.pid], **service_groups})
            rcpu = CpuMeter(relay_groups)
            nb = plan.baseline_users
            targets = list(range(nb))
            senders = list(range(nb, nb + 50))
            relay_runs = {
                "relay": (relays[0], relays[0]),
                **({"relay-x": (relays[0], relays[1])} if len(relays) > 1 else {}),
            }
            for scenario, (send_relay, recv_relay) in relay_runs.items():
                if "relay" not in plan.parts:
                    break
                recv_url = f"ws://{HOST}:{recv_relay.port}/relay/?id={{id}}"
                send_url = f"ws://{HOST}:{send_relay.port}/relay/?id={{id}}"
                listener.call("connect", template=recv_url, first=0, last=nb, concurrency=200)
                for rate in plan.rates:
                    self.rate_run(
                        topo=topo,
                        scenario=scenario,
                        label="r",
                        listener=listener,
                        sender=inviter,
                        n=nb,
                        rate=rate,
                        cmd="relay",
                        cpu=rcpu,
                        template=send_url,
                        senders=senders,
                        targets=targets,
                    )
                listener.call("close_all")

            if "cycles" in plan.parts:
                # Scenario 2: full call cycles, pairs spread over the servers.
                bases = [f"{HOST}:{s.port}" for s in servers]
                pairs = [
                    [
                        pair_base + 2 * k,
                        pair_base + 2 * k + 1,
                        bases[k % len(bases)],
                        bases[(k // 2) % len(bases)],
                    ]
                    for k in range(plan.cycle_pairs)
                ]
                cyc_client = Client(f"{topo.name}-cycles")
                extra.append(cyc_client)
                groups2 = dict(groups)
                groups2["clients"] = [cyc_client.pid]
                cpu2 = CpuMeter(groups2)
                cpu2.start()
                res = cyc_client.call(
                    "cycles",
                    pairs=pairs,
                    template="ws://{base}/ws/?token={token}&presence=0",
                    duration=plan.cycle_secs,
                    prefix=self.tag("c"),
                )
                usage = cpu2.stop()
                rate = res["cycles"] / res["secs"]
                row = {
                    "topology": topo.name,
                    "pairs": len(pairs),
                    "secs": res["secs"],
                    "cycles": res["cycles"],
                    "per_sec": round(rate, 1),
                    "cycle_ms": summary_ms(res["cycle_s"]),
                    "errors": res["error_count"],
                    "error_samples": res["errors"][:3],
                    "statuses": res["statuses"],
                    "cpu": usage,
                }
                self.cycles.append(row)
                log(
                    f"  cycles    {topo.name:<10} {row['per_sec']}/s over {res['secs']} s"
                    f" ({res['cycles']} cycles, {len(pairs)} pairs), errors {res['error_count']}"
                    f" {res['errors'][:2]}, cycle {row['cycle_ms']}, cpu {usage}"
                )
        finally:
            for c in [listener, inviter, *extra]:
                c.close()

    def _timers(self, topo: Topology) -> None:
        plan = self.plan
        for count in plan.timer_counts:
            batch = self.tag("t")
            # Seeding runs at about 3,000 rows/s here (100,000 took 34 s): the deadlines start
            # after it and after the worker has loaded them, so lateness is the worker's own.
            lead = 3.0 + count / 2000
            t_seed = time.monotonic()
            # Seeding takes a while for 100k rows: place the deadlines after it.
            seeded = djangotool(
                topo,
                "seed-timers",
                "--count",
                str(count),
                "--start",
                str(time.time() + lead),
                "--spread",
                str(plan.timer_spread),
                "--users",
                "1000",
                "--batch",
                batch,
            )
            start_at = time.time()
            log(f"  timers    {topo.name:<10} seeded {count} in {time.monotonic() - t_seed:.1f} s")
            procs = ProcessGroup()
            try:
                if topo.production:
                    worker = procs.start(
                        f"{topo.name}-timers-{count}",
                        [PYTHON, "manage.py", "runworker", "call-timers"],
                        topo.env,
                    )
                else:
                    port = free_port()
                    worker = procs.start(
                        f"{topo.name}-timers-{count}", serve_args(port, "embedded"), topo.env, port
                    )
                groups: dict[str, Any] = {"timer process": [worker.pid]}
                if topo.production:
                    groups.update({"postgres": "postgres", "redis": "redis-server"})
                cpu = CpuMeter(groups)
                cpu.start()
                end_wait = start_at + lead + plan.timer_spread + plan.timer_max_wait
                done = 0
                while time.time() < end_wait:
                    time.sleep(1.0)
                    done = count_timeouts(topo, batch)
                    if done >= count:
                        break
                usage = cpu.stop()
            finally:
                procs.stop_all()
            rep = djangotool(topo, "timer-report", "--batch", batch)
            lat = rep.pop("lateness")
            row = {
                "topology": topo.name,
                "pending": count,
                **summary_ms(lat),
                "expired": rep["calls_timed_out"],
                "more_than_once": rep["more_than_once"],
                "timeout_rows": rep["timeout_rows"],
                "still_ringing": rep["still_ringing"],
                "seeded": seeded["seeded"],
                "cpu": usage,
            }
            self.timers.append(row)
            self.latencies[f"timers {topo.name} {count}"] = lat
            log(
                f"  timers    {topo.name:<10} {count} pending: lateness p50 {row['p50']} ms"
                f" p99 {row['p99']} ms max {row['max']} ms; expired {row['expired']},"
                f" twice {row['more_than_once']}, still ringing {row['still_ringing']}, cpu {usage}"
            )


# --- output ---------------------------------------------------------------------------------------


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 100 else f"{v:.2f}"
    return str(v)


def baseline_for(rows: list[dict[str, Any]], topo: str, scenario: str, rate: int) -> float | None:
    base = {"invite": "relay", "cross": "relay-x"}[scenario]
    for r in rows:
        if r["topology"] == topo and r["scenario"] == base and r["rate"] == rate:
            return float(r["p99"])
    return None


def markdown(runner: Runner, machine: str, started: str, secs: float) -> str:
    plan = runner.plan
    out = [
        f"Run `{plan.mode}` on {started} ({secs:.0f} s): {machine}.",
        "",
        "**Invite to ring** (scenario 1: callee on the server that took the REST invite; "
        "scenario 5, `cross`: callee on the other server process). Latency from the REST "
        "invite written to the callee's socket holding `call.invitation_received`; baseline: the "
        "bare Channels relay (`relay`, `relay-x` across processes) at the same rate.",
        "",
        "| scenario | topology | idle users | rate/s | p50 ms | p99 ms | max ms | sent | lost "
        "| relay p99 ms | p99 / relay p99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runner.rows:
        if r["scenario"] not in ("invite", "cross"):
            continue
        base = baseline_for(runner.rows, r["topology"], r["scenario"], r["rate"])
        ratio = f"{r['p99'] / base:.1f}×" if base else "n/a"
        extra = ""
        if r["failed"] or r["skipped"]:
            extra = f" ({r['failed']} failed, {r['skipped']} skipped)"
        out.append(
            f"| {r['scenario']} | {r['topology']} | {r['n']} | {r['rate']} | {fmt(r['p50'])} "
            f"| {fmt(r['p99'])} | {fmt(r['max'])} | {r['sent']}{extra} | {r['lost']} "
            f"| {fmt(base) if base else 'n/a'} | {ratio} |"
        )
    out += [
        "",
        "**Baseline relay** (same stack: Daphne, Channels consumer, same channel layer; no "
        "database, no auth).",
        "",
        "| relay | topology | idle sockets | rate/s | p50 ms | p99 ms | max ms | sent | lost |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runner.rows:
        if r["scenario"] in ("relay", "relay-x"):
            out.append(
                f"| {r['scenario']} | {r['topology']} | {r['n']} | {r['rate']} | {fmt(r['p50'])} "
                f"| {fmt(r['p99'])} | {fmt(r['max'])} | {r['sent']} | {r['lost']} |"
            )
    out += [
        "",
        "**Full call cycles** (scenario 2: invite, ring, `call.ack` confirmed, accept, end; "
        "closed loop, one REST client per user; CPU in % of one core over the phase).",
        "",
        "| topology | pairs | seconds | cycles | cycles/s | cycle p50 ms | cycle p99 ms | errors "
        "| CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in runner.cycles:
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in c["cpu"].items())
        out.append(
            f"| {c['topology']} | {c['pairs']} | {c['secs']:.0f} | {c['cycles']} | {c['per_sec']} "
            f"| {fmt(c['cycle_ms']['p50'])} | {fmt(c['cycle_ms']['p99'])} | {c['errors']} | {cpu} |"
        )
    out += [
        "",
        "**Idle connections** (scenario 3: RSS growth of one server process divided by the "
        "sockets; reconnect storm: every socket cut at once, all reconnecting together).",
        "",
        "| topology | sockets | server RSS MiB | KiB / socket | connect rate/s "
        "| server busy after connecting, s | storm rate/s | storm s | storm failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i in runner.idle:
        out.append(
            f"| {i['topology']} | {i['n']} | {i['rss_mib']} | {i['kib_per_socket']} "
            f"| {i['connect_rate']} | {i.get('settle_s', '')} | {i.get('storm_rate', '')} "
            f"| {i.get('storm_secs', '')} "
            f"| {i.get('storm_failed', '')} |"
        )
    out += [
        "",
        f"**Timers** (scenario 4: pending invitations inserted in bulk, deadlines spread over "
        f"{plan.timer_spread:.0f} s, then the worker started; lateness = the timeout row's time "
        "past the deadline).",
        "",
        "| topology | pending | p50 ms | p99 ms | max ms | expired | expired twice | still ringing "
        "| timer process CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in runner.timers:
        out.append(
            f"| {t['topology']} | {t['pending']} | {fmt(t['p50'])} | {fmt(t['p99'])} "
            f"| {fmt(t['max'])} | {t['expired']} | {t['more_than_once']} | {t['still_ringing']} "
            f"| {t['cpu'].get('timer process', 0):.0f} |"
        )
    if runner.notes:
        out += ["", "Notes: " + "; ".join(runner.notes[:5])]
    return "\n".join(out) + "\n"


def plot(runner: Runner, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: v for k, v in runner.latencies.items() if v and not k.startswith("timers")}
    topos = [t for t in ("embedded", "production") if any(f" {t} " in k for k in series)]
    if not topos:
        return
    fig, axes = plt.subplots(1, len(topos), figsize=(7 * len(topos), 5), squeeze=False)
    for ax, topo in zip(axes[0], topos, strict=True):
        for key, lat in sorted(series.items()):
            if f" {topo} " not in key:
                continue
            ms = sorted(v * 1000 for v in lat)
            ys = [(i + 1) / len(ms) for i in range(len(ms))]
            style = "--" if key.startswith("relay") else "-"
            ax.plot(ms, ys, style, label=key.replace(f" {topo}", ""), linewidth=1.2)
        ax.set_xscale("log")
        ax.set_xlabel("invite sent → callee socket has call.invitation_received (ms, log)")
        ax.set_ylabel("fraction of invitations")
        ax.set_title(f"{topo} topology ({runner.plan.mode} run); dashed: bare relay")
        ax.axhline(0.99, color="grey", linewidth=0.5)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_readme(table: str, mode: str) -> None:
    readme = ROOT / "bench" / "README.md"
    if not readme.exists():
        return
    text = readme.read_text()
    start, end = f"<!-- results:{mode}:start -->", f"<!-- results:{mode}:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(f"{head}{start}\n{table}{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="small N, short phases (default)")
    group.add_argument("--full", action="store_true", help="the figures of issue 5")
    parser.add_argument("--only", choices=["embedded", "production"], help="one topology")
    parser.add_argument("--no-write", action="store_true", help="print only; keep results/")
    # Pieces of the full plan, one at a time (the whole --full takes long on 2 cores):
    parser.add_argument("--parts", help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--sockets", type=int, help="idle sockets on server A (one level)")
    parser.add_argument("--rates", help="comma-separated invitation rates per second")
    parser.add_argument("--timer-counts", help="comma-separated pending timer counts")
    parser.add_argument("--rate-secs", type=float, help="seconds of sending per rate")
    parser.add_argument("--name", help="write results-<name>.*; a partial run defaults to 'custom'")
    args = parser.parse_args()
    plan = PLANS["full" if args.full else "quick"]
    if args.only:
        plan.topologies = [args.only]
    custom = False
    if args.parts:
        plan.parts = {p.strip() for p in args.parts.split(",")} & set(PARTS)
        custom = True
    if args.sockets:
        plan.levels = plan.s1_levels = [args.sockets]
        plan.baseline_users = args.sockets  # the relay holds as many idle sockets
        custom = True
    if args.rates:
        plan.rates = [int(r) for r in args.rates.split(",")]
        custom = True
    if args.rate_secs:
        plan.rate_secs = args.rate_secs
        custom = True
    if args.timer_counts:
        plan.timer_counts = [int(c) for c in args.timer_counts.split(",")]
        custom = True
    if args.name or custom:
        # A partial run never overwrites the quick or full results the README shows.
        plan.mode = args.name or "custom"
    limit = raise_fd_limit()
    log(f"plan {plan.mode}; file descriptors {limit}; {machine_description()}")
    TMP.mkdir(parents=True, exist_ok=True)
    os.environ.update({"PYTHONPATH": str(ROOT)})
    runner = Runner(plan)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.monotonic()
    for name in plan.topologies:
        topo = embedded_topology() if name == "embedded" else production_topology()
        runner.run_topology(topo)
    secs = time.monotonic() - t0
    table = markdown(runner, machine_description(), started, secs)
    print()
    print(table)
    if args.no_write:
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"results-{plan.mode}.md").write_text(table)
    raw = {
        "mode": plan.mode,
        "started": started,
        "machine": machine_description(),
        "secs": round(secs, 1),
        "rates": runner.rows,
        "cycles": runner.cycles,
        "idle": runner.idle,
        "timers": runner.timers,
    }
    (RESULTS / f"results-{plan.mode}.json").write_text(json.dumps(raw, indent=1) + "\n")
    plot(runner, RESULTS / f"latency-{plan.mode}.png")
    update_readme(table, plan.mode)
    log(f"done in {secs:.0f} s; wrote results-{plan.mode}.md, .json and latency-{plan.mode}.png")


if __name__ == "__main__":
    main()
