"""The scenarios of the benchmark, one function each, and the order a topology runs them in.

Every server socket is a subscribed client, as the browser app connects (bench/sockets.py): it
sends ``presence.subscribe`` with ``plan.watch`` usernames right after ``session.ready``. Only
the ``storm-nosub`` row leaves that out, as an extra.
"""

from __future__ import annotations

import time
from typing import Any

from common import (
    HOST,
    Client,
    CpuMeter,
    ProcessGroup,
    Topology,
    log,
    rss_bytes,
    summary_ms,
)
from stage import (
    Results,
    Stage,
    count_timeouts,
    djangotool,
    measure_rate,
    settle,
    start_server,
    start_timer_worker,
    ws_template,
)


def idle_and_invite(stage: Stage, res: Results) -> None:
    """Scenario 3 (memory per idle socket, reconnect storm) with scenario 1 at each level."""
    plan, topo, a = res.plan, stage.topo, stage.servers[0]
    listener = stage.listener
    # Warm up: imports, connections and caches of the server.
    listener.call(
        "connect", template=stage.ws(a), first=0, last=10, concurrency=10, watch=plan.watch
    )
    stage.inviter.call(
        "invite",
        base=stage.base_a,
        callers=stage.callers[:20],
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
    cpu = CpuMeter(stage.cpu_groups())
    for level in plan.levels:
        # Each batch watches within itself: the first 10 (warm-up) sockets watch each other.
        got = listener.call(
            "connect",
            template=stage.ws(a),
            first=connected,
            last=level,
            concurrency=200,
            watch=plan.watch,
        )
        connected = level
        settle_s = settle([s.pid for s in stage.servers], plan.settle)
        rss = rss_bytes(a.pid)
        taken = listener.call("take")  # every frame since the last take, the connects' too
        row = {
            "topology": topo.name,
            "n": level,
            "connect_rate": got["rate"],
            "failed": got["failed"],
            "rss_mib": round(rss / 2**20, 1),
            "kib_per_socket": round((rss - rss0) / 1024 / max(1, level - 10), 1),
            "settle_s": settle_s,
            "ready_p99_s": got["ready_p99_s"],
            "presence_frames": taken["frames"].get("presence.changed", 0),
            "subscribe_errors": taken["subscribe_errors"],
        }
        res.idle.append(row)
        log(
            f"  idle      {topo.name:<10} N={level:<6} rss {row['rss_mib']} MiB"
            f"  {row['kib_per_socket']} KiB/socket  connect {got['rate']}/s  busy {settle_s} s"
            f" after  failed {got['failed']}  presence frames {row['presence_frames']}"
            f"  {got['errors'][:1]}"
        )
        if level in plan.s1_levels and "invite" in plan.parts:
            for rate in plan.rates:
                measure_rate(
                    res,
                    topo=topo,
                    scenario="invite",
                    listener=listener,
                    sender=stage.inviter,
                    n=level,
                    rate=rate,
                    cmd="invite",
                    cpu=cpu,
                    base=stage.base_a,
                    callers=stage.next_callers(rate),
                    callees=list(range(level)),
                    cancel_after=plan.cancel_after,
                    drain=plan.drain,
                )
    if "reconnect" in plan.parts and not (topo.production and "reconnect" in plan.production_skip):
        reconnect_storm(stage, res)
    listener.call("close_all")


def reconnect_storm(stage: Stage, res: Results) -> None:
    """Every idle socket cut without a closing handshake, then all reconnect together."""
    storm = stage.listener.call("reconnect", concurrency=1000)
    time.sleep(1.0)
    res.idle[-1].update(
        storm_rate=storm["rate"],
        storm_secs=storm["secs"],
        storm_failed=storm["failed"],
        rss_after_storm_mib=round(rss_bytes(stage.servers[0].pid) / 2**20, 1),
    )
    log(f"  reconnect {stage.topo.name:<10} {storm}")


def cross_process(stage: Stage, res: Results, callees: list[int]) -> None:
    """Scenario 5: callees connected to server B, invitations through server A."""
    plan = res.plan
    stage.listener.call(
        "connect",
        template=stage.ws(stage.servers[1]),
        first=callees[0],
        last=callees[-1] + 1,
        concurrency=200,
        watch=plan.watch,
    )
    settle([s.pid for s in stage.servers], plan.settle)
    cpu = CpuMeter(stage.cpu_groups())
    for rate in plan.rates:
        measure_rate(
            res,
            topo=stage.topo,
            scenario="cross",
            listener=stage.listener,
            sender=stage.inviter,
            n=len(callees),
            rate=rate,
            cmd="invite",
            cpu=cpu,
            base=stage.base_a,
            callers=stage.next_callers(rate),
            callees=callees,
            cancel_after=plan.cancel_after,
            drain=plan.drain,
        )
    stage.listener.call("close_all")


def relay_baseline(stage: Stage, res: Results) -> None:
    """The bare relay at the same rates with as many idle sockets (across processes too)."""
    plan = res.plan
    groups: dict[str, Any] = {f"relay {r.name[-1]}": [r.pid] for r in stage.relays}
    groups.update({"clients": [stage.listener.pid, stage.inviter.pid], **stage.service_groups})
    cpu = CpuMeter(groups)
    nb = plan.baseline_users
    relays = stage.relays
    runs = {"relay": (relays[0], relays[0])}
    if len(relays) > 1:
        runs["relay-x"] = (relays[0], relays[1])
    senders = list(range(nb, nb + 50))
    for scenario, (send_relay, recv_relay) in runs.items():
        recv_url = f"ws://{HOST}:{recv_relay.port}/relay/?id={{id}}"
        send_url = f"ws://{HOST}:{send_relay.port}/relay/?id={{id}}"
        stage.inviter.call("relay_open", template=send_url, senders=senders)
        conn = stage.listener.call("connect", template=recv_url, first=0, last=nb, concurrency=200)
        if conn["failed"]:  # their messages count as lost: say why
            res.notes.append(
                f"{scenario} {stage.topo.name}: {conn['failed']} of {nb} sockets "
                f"failed to connect ({conn['errors'][:1]})"
            )
        for rate in plan.rates:
            measure_rate(
                res,
                topo=stage.topo,
                scenario=scenario,
                listener=stage.listener,
                sender=stage.inviter,
                n=nb,
                rate=rate,
                cmd="relay",
                cpu=cpu,
                template=send_url,
                senders=senders,
                targets=list(range(nb)),
            )
        stage.listener.call("close_all")


def call_cycles(stage: Stage, res: Results, pair_base: int) -> None:
    """Scenario 2: invite, ring, ack, accept, end in a closed loop; pairs spread over servers."""
    plan, topo = res.plan, stage.topo
    bases = [f"{HOST}:{s.port}" for s in stage.servers]
    pairs = [
        [
            pair_base + 2 * k,
            pair_base + 2 * k + 1,
            bases[k % len(bases)],
            bases[(k // 2) % len(bases)],
        ]
        for k in range(plan.cycle_pairs)
    ]
    # The phase before leaves work behind (its cancels and disconnects on the servers, then the
    # presence graces they start on the timer worker): the meter must not count it as cycles'.
    busy = [s.pid for s in stage.servers] + ([stage.worker.pid] if stage.worker else [])
    settle_s = settle(busy, plan.settle)
    client = Client(f"{topo.name}-cycles")
    try:
        cpu = CpuMeter({**stage.cpu_groups(), "clients": [client.pid]})
        cpu.start()
        got = client.call(
            "cycles",
            pairs=pairs,
            template="ws://{base}/ws/?token={token}",
            duration=plan.cycle_secs,
            prefix=res.tag("c"),
            watch=plan.watch,
        )
        usage = cpu.stop()
    finally:
        client.close()
    row = {
        "topology": topo.name,
        "pairs": len(pairs),
        "secs": got["secs"],
        "cycles": got["cycles"],
        "per_sec": round(got["cycles"] / got["secs"], 1),
        "cycle_ms": summary_ms(got["cycle_s"]),
        "errors": got["error_count"],
        "error_samples": got["errors"][:3],
        "statuses": got["statuses"],
        "cpu": usage,
        "settle_s": settle_s,
    }
    res.cycles.append(row)
    log(
        f"  cycles    {topo.name:<10} {row['per_sec']}/s over {got['secs']} s ({got['cycles']}"
        f" cycles, {len(pairs)} pairs), errors {got['error_count']} {got['errors'][:2]},"
        f" cycle {row['cycle_ms']}, cpu {usage} (after {settle_s} s to go quiet)"
    )


def timers(topo: Topology, res: Results) -> None:
    """Scenario 4: pending invitations inserted in bulk, then the timer process started.

    The timer calls' users are connected meanwhile as subscribed sockets (to a server of the
    topology: the embedded one is the timer process itself), so expiries reach live devices.
    """
    plan = res.plan
    for count in plan.timer_counts:
        batch = res.tag("t")
        # Seeding runs at about 3,000 rows/s (100,000 took 34 s) after a few seconds of start-up;
        # the first deadline comes after it and after the sockets connected at 100/s (the table
        # says if they were later), so the lateness is the worker's own.
        lead = 8.0 + count / 2000 + plan.timer_sockets / 100
        first_deadline = time.time() + lead
        t_seed = time.monotonic()
        seeded = djangotool(
            topo,
            "seed-timers",
            "--count",
            str(count),
            "--start",
            str(first_deadline),
            "--spread",
            str(plan.timer_spread),
            "--users",
            str(plan.timer_sockets),
            "--batch",
            batch,
        )
        log(f"  timers    {topo.name:<10} seeded {count} in {time.monotonic() - t_seed:.1f} s")
        procs = ProcessGroup()
        listener = Client(f"{topo.name}-timers-listener")
        try:
            server = start_server(procs, topo, "timers-server")
            groups: dict[str, Any] = {"timer process": [server.pid]}
            if topo.production:
                worker = start_timer_worker(procs, topo, f"timers-{count}")
                groups = {
                    "timer process": [worker.pid],
                    "server": [server.pid],
                    "postgres": "postgres",
                    "redis": "redis-server",
                }
            # The sockets connect while the timers run: a slow connect must not hold back the
            # meter or the wait (on a server with presence broadcast it takes minutes).
            t_connect = time.time()
            listener.send(
                "connect",
                template=ws_template(server),
                first=0,
                last=plan.timer_sockets,
                concurrency=200,
                watch=plan.watch,
            )
            cpu = CpuMeter(groups)
            cpu.start()
            end_wait = max(first_deadline, time.time()) + plan.timer_spread + plan.timer_max_wait
            while time.time() < end_wait:
                time.sleep(1.0)
                if count_timeouts(topo, batch) >= count:
                    break
            usage = cpu.stop()
            cpu_secs = round(usage["timer process"] * cpu.wall / 100, 2)
            conn = listener.recv()
            connected_in_time = t_connect + conn["secs"] <= first_deadline
            listener.call("close_all", abort=True)
        finally:
            listener.close()
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
            "sockets": conn["connected"],
            "cpu": usage,
            # Throughput: expiries per second of the drain (wall) and per CPU-second of the timer
            # process (its CPU over the whole meter, sockets connecting and idle lead included).
            "drain_secs": rep["drain_secs"],
            "per_wall_sec": round(rep["timeout_rows"] / rep["drain_secs"])
            if rep["drain_secs"]
            else None,
            "timer_cpu_secs": cpu_secs,
            "per_cpu_sec": round(rep["timeout_rows"] / cpu_secs) if cpu_secs else None,
            "connected_before_first_deadline": connected_in_time,
        }
        res.record(res.timers, row, f"timers {topo.name} {count}", lat)
        log(
            f"  timers    {topo.name:<10} {count} pending, {conn['connected']} sockets: lateness"
            f" p50 {row['p50']} ms p99 {row['p99']} ms max {row['max']} ms; expired"
            f" {row['expired']}, twice {row['more_than_once']}, still ringing"
            f" {row['still_ringing']}, cpu {usage}; drain {row['drain_secs']} s:"
            f" {row['per_wall_sec']}/wall-s, {row['per_cpu_sec']}/cpu-s ({cpu_secs} cpu-s)"
        )
