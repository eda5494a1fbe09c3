#!/usr/bin/env python3
"""The benchmark suite of callsite (issues 5 and 9): ``make bench`` or ``make bench-full``.

    python bench/run.py --quick     # small N and short phases
    python bench/run.py --full      # 1,000 to 10,000 sockets, 30 s cycles, 100,000 timers

For each topology (embedded: one ``manage.py serve``, SQLite, in-memory layer, timers in process;
production: two ``serve --timers external`` + ``runworker call-timers``, PostgreSQL and Redis) it
measures, with clients in separate processes speaking real HTTP and WebSockets, every socket
subscribed to presence as the browser app is (bench/scenarios.py has one function per scenario):

- a connect storm (embedded): N sockets at once on a fresh server, invitations right away;
- ring push (issue 12): invite to a push service fixture receiving the ring, for offline users
  with one Web Push device each, beside the fixture's own round trip (bench/pushbench.py);
1. invite to ring at fixed rates with N idle users connected, beside a bare Channels relay;
2. full call cycles (invite, ack, accept, end) in a closed loop, with the CPU of every process;
3. memory per idle socket and the connect rate of a reconnect storm;
4. timer accuracy with many pending invitations inserted in bulk;
5. (production) caller and callee on different server processes, beside a cross-process relay.

It prints the tables (issue 9's targets first), writes bench/results/ (markdown, JSON, PNG plot;
bench/report.py) and refreshes the results section of bench/README.md. Timings never fail the
run: only a broken setup does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ROOT,
    TMP,
    Client,
    ProcessGroup,
    Topology,
    embedded_topology,
    log,
    machine_description,
    production_topology,
    raise_fd_limit,
)
from plans import PARTS, PLANS, Plan  # noqa: E402
from pushbench import ring_push  # noqa: E402
from report import markdown, write  # noqa: E402
from scenarios import (  # noqa: E402
    call_cycles,
    cross_process,
    idle_and_invite,
    relay_baseline,
    timers,
)
from stage import (  # noqa: E402
    Results,
    Stage,
    djangotool,
    flush_redis_prefix,
    reset_database,
    start_relay,
    start_server,
    start_timer_worker,
)
from storm import connect_storm  # noqa: E402


def run_topology(topo: Topology, res: Results) -> None:
    plan = res.plan
    log(f"== {topo.name}: resetting the database")
    reset_database(topo)
    flush_redis_prefix(topo)
    # Users: [0, L) idle callees on server A (the first of them own the timer calls), [L, L+C)
    # callers, then cross-process callees, then cycle pairs, then each storm's sockets and callers.
    top = max(*plan.levels, plan.timer_sockets)
    callers = list(range(top, top + plan.callers))
    pair_base = top + plan.callers + plan.cross_users
    storm_base = pair_base + 2 * plan.cycle_pairs
    storm_users = plan.storm_sockets + int(plan.storm_rate * plan.storm_secs)
    push_base = storm_base + 2 * storm_users  # push devices' users, callers, no-device users
    users = push_base + (3 * plan.push_users if "push" in plan.parts else 0)
    t0 = time.monotonic()
    info = djangotool(topo, "setup", "--users", str(users))
    log(f"   migrated, {users} users and tokens in {time.monotonic() - t0:.1f} s ({info})")
    if not topo.production:  # the storm of issue 9 is one `make run` process
        for k, part in enumerate(("storm", "storm-nosub")):
            if part in plan.parts:
                first = storm_base + k * storm_users
                connect_storm(topo, res, first, subscribed=part == "storm")
    if plan.parts - {"timers", "storm", "storm-nosub", "push"}:
        procs = ProcessGroup()
        try:
            names = ["a", "b"] if topo.production else ["a"]
            servers = [start_server(procs, topo, f"server-{n}") for n in names]
            worker = start_timer_worker(procs, topo, "worker") if topo.production else None
            relays = [start_relay(procs, topo, f"relay-{n}") for n in names]
            services = {"postgres": "postgres", "redis": "redis-server"} if topo.production else {}
            listener, inviter = Client(f"{topo.name}-listener"), Client(f"{topo.name}-inviter")
            stage = Stage(
                topo, servers, worker, relays, listener, inviter, callers, services, plan.rate_secs
            )
            try:
                # The relay first, while the servers are idle: after their sockets close, a
                # server with presence broadcast stays busy for minutes (Redis and the CPU too).
                if "relay" in plan.parts:
                    relay_baseline(stage, res)
                idle_and_invite(stage, res)
                if "cross" in plan.parts and topo.production:
                    cross_process(stage, res, list(range(top + plan.callers, pair_base)))
                if "cycles" in plan.parts:
                    call_cycles(stage, res, pair_base)
            finally:
                listener.close()
                inviter.close()
        finally:
            procs.stop_all()
    if "push" in plan.parts:  # its own server(s), with Web Push on, and the fixtures
        ring_push(topo, res, push_base)
    if "timers" in plan.parts:
        timers(topo, res)


def parse_plan() -> tuple[Plan, bool]:
    """The plan of the command line, and whether to write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="small N, short phases (default)")
    group.add_argument("--full", action="store_true", help="the figures of issues 5 and 9")
    parser.add_argument("--only", choices=["embedded", "production"], help="one topology")
    parser.add_argument("--no-write", action="store_true", help="print only; keep results/")
    # Pieces of the full plan, one at a time (the whole --full takes long on 2 cores):
    parser.add_argument("--parts", help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--sockets", type=int, help="idle sockets on server A (one level)")
    parser.add_argument("--storm-sockets", type=int, help="sockets of the connect storm")
    parser.add_argument("--rates", help="comma-separated invitation rates per second")
    parser.add_argument("--timer-counts", help="comma-separated pending timer counts")
    parser.add_argument("--rate-secs", type=float, help="seconds of sending per rate")
    parser.add_argument("--push-users", type=int, help="offline users with a Web Push device")
    parser.add_argument("--push-rates", help="comma-separated invitation rates of the push part")
    parser.add_argument("--name", help="write results-<name>.*; a partial run defaults to 'custom'")
    args = parser.parse_args()
    plan = PLANS["full" if args.full else "quick"]
    if args.only:
        plan.topologies = (args.only,)
    if args.parts:
        plan.parts = frozenset(p.strip() for p in args.parts.split(",")) & set(PARTS)
    if args.sockets:
        plan.levels = plan.s1_levels = (args.sockets,)
        plan.baseline_users = args.sockets  # the relay holds as many idle sockets
    numbers = {
        "rates": args.rates,
        "timer_counts": args.timer_counts,
        "push_rates": args.push_rates,
    }
    for name, given in numbers.items():
        if given:
            setattr(plan, name, tuple(int(v) for v in given.split(",")))
    for name in ("storm_sockets", "rate_secs", "push_users"):
        if getattr(args, name):
            setattr(plan, name, getattr(args, name))
    given = [args.parts, args.sockets, args.storm_sockets, args.rate_secs, args.push_users]
    custom = any([*given, *numbers.values()])
    if args.name or custom:
        # A partial run never overwrites the quick or full results the README shows.
        plan.mode = args.name or "custom"
    return plan, not args.no_write


def main() -> None:
    plan, save = parse_plan()
    limit = raise_fd_limit()
    machine = machine_description()
    log(f"plan {plan.mode}; file descriptors {limit}; {machine}")
    load0 = os.getloadavg()
    TMP.mkdir(parents=True, exist_ok=True)
    os.environ.update({"PYTHONPATH": str(ROOT)})
    res = Results(plan)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.monotonic()
    for name in plan.topologies:
        run_topology(embedded_topology() if name == "embedded" else production_topology(), res)
    secs = time.monotonic() - t0
    # The machine is shared: its load says how far the figures are the server's own.
    machine += f"; load average {load0[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    tables = markdown(res, machine, started, secs)
    print()
    print(tables)
    if save:
        write(res, tables, started, machine, secs)
        log(
            f"done in {secs:.0f} s; wrote results-{plan.mode}.md, .json and latency-{plan.mode}.png"
        )


if __name__ == "__main__":
    main()
