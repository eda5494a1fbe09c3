"""The connect storm of issue 9: N sockets at once on a fresh server, invitations right away."""

from __future__ import annotations

from common import HOST, Client, CpuMeter, ProcessGroup, Topology, log
from stage import (
    Results,
    measure_rate,
    ring_row,
    start_relay,
    start_server,
    wait_for_rings,
    ws_template,
)


def connect_storm(topo: Topology, res: Results, first: int, *, subscribed: bool) -> None:
    """N sockets connect at once to a fresh server, and invitations start at once over REST.

    Users [first, first + N) connect; the next ones call them, each once: a storm has users of
    its own, so a call it leaves behind never makes a later scenario's user busy. A callee
    rings through ``call.invitation_received`` or, if its socket came later than the invite,
    through ``session.ready``'s ``incoming``. Then the same N sockets on a fresh bare relay, and
    messages at the same rate once they are connected.
    """
    plan = res.plan
    n, scenario = plan.storm_sockets, "storm" if subscribed else "storm-nosub"
    procs = ProcessGroup()
    listener, inviter = Client(f"{topo.name}-{scenario}-l"), Client(f"{topo.name}-{scenario}-i")
    try:
        server = start_server(procs, topo, f"{scenario}-server")
        base = f"{HOST}:{server.port}"
        cpu = CpuMeter({"server": [server.pid], "clients": [listener.pid, inviter.pid]})
        cpu.start()
        listener.send(
            "connect",
            template=ws_template(server),
            first=first,
            last=first + n,
            concurrency=n,
            watch=plan.watch if subscribed else 0,
            timeout=plan.storm_open_timeout,
        )
        sent = inviter.call(
            "invite",
            base=base,
            callers=list(range(first + n, first + n + int(plan.storm_rate * plan.storm_secs))),
            callees=list(range(first, first + n)),
            rate=plan.storm_rate,
            duration=plan.storm_secs,
            prefix=res.tag(scenario),
            cancel_after=-1.0,
            drain=plan.storm_open_timeout,
            keep=True,
        )
        conn = listener.recv()
        got = wait_for_rings(listener, sent["sent"], plan.lost_after)
        usage = cpu.stop()
        lat, counts = ring_row(sent["sent"], got, plan.lost_after)
        frames = counts["frames"]  # take() holds every frame since the connect began
        row = {
            "scenario": scenario,
            "topology": topo.name,
            "n": n,
            "rate": plan.storm_rate,
            **counts,
            "failed": sent["attempted"] - len(sent["sent"]),
            "statuses": sent["statuses"],
            "connected": conn["connected"],
            "connect_failed": conn["failed"],
            "connect_secs": conn["secs"],
            "ready_p50_s": conn["ready_p50_s"],
            "ready_p99_s": conn["ready_p99_s"],
            "ready_max_s": conn["ready_max_s"],
            "cpu": usage,
            "cpu_wall_s": round(cpu.wall, 2),
        }
        res.record(res.storms, row, f"{scenario} {topo.name} N={n} {plan.storm_rate}/s", lat)
        log(
            f"  {scenario:<11} {topo.name} N={n}: connected {conn['connected']} in "
            f"{conn['secs']} s (ready p99 {conn['ready_p99_s']} s); invites p50 {row['p50']} ms "
            f"p99 {row['p99']} ms, lost {row['lost']} of {row['sent']}, failed {row['failed']}; "
            f"presence frames {frames.get('presence.changed', 0)}; cpu {usage}"
        )
        inviter.call("cancel_calls", base=base, calls=sent["open"])
        listener.call("close_all", abort=True)
        procs.stop_all()
        if subscribed:
            relay_storm(topo, res, procs, listener, inviter)
    finally:
        listener.close()
        inviter.close()
        procs.stop_all()


def relay_storm(
    topo: Topology, res: Results, procs: ProcessGroup, listener: Client, inviter: Client
) -> None:
    plan = res.plan
    n = plan.storm_sockets
    relay = start_relay(procs, topo, "relay-storm")
    url = f"ws://{HOST}:{relay.port}/relay/?id={{id}}"
    conn = listener.call("connect", template=url, first=0, last=n, concurrency=n)
    senders = list(range(n, n + 50))
    inviter.call("relay_open", template=url, senders=senders)
    row = measure_rate(
        res,
        topo=topo,
        scenario="relay-storm",
        listener=listener,
        sender=inviter,
        n=n,
        rate=plan.storm_rate,
        cmd="relay",
        cpu=CpuMeter({"relay": [relay.pid]}),
        secs=plan.storm_secs,
        template=url,
        senders=senders,
        targets=list(range(n)),
    )
    res.rows.remove(row)  # a storm row, not a rate row
    row.update(
        connected=conn["connected"], connect_failed=conn["failed"], connect_secs=conn["secs"]
    )
    res.storms.append(row)
    listener.call("close_all", abort=True)
