"""Ring-push latency (issue 12, "Benchmark"): from the REST invite to the push service receiving
the ring, for callees that hold no socket and one Web Push device each.

Its own processes, started after the other parts of a topology: the provider fixtures (``python -m
tests.push.fixtures``, one process, the Web Push service among them), then a server configured
with the fixture's VAPID keys (embedded: ``serve``, the delivery worker in process; production:
``serve --timers external``, ``runworker call-timers`` and ``runworker push-delivery``, as
deploy/systemd runs them). Push stays off in the other parts' servers, whose figures it would
otherwise change (every invite would look for push devices).

Per rate: a baseline first (bare POSTs from a client straight to the fixture at the same rate:
the push service's own receive path), then ``POST /api/calls/`` at the rate, one invitation per
push user, callers without sockets or devices. The fixture notes each push's arrival on
``time.monotonic()`` once its body is read; the ring is matched to its invitation by the
``extended_data`` the fixture decrypts. Lost = no ring within ``lost_after`` of the request.
The calls are cancelled after counting, and the phase waits for their stop pushes before the
fixture is cleared for the next one.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import replace
from typing import Any

from common import (
    PYTHON,
    TMP,
    Client,
    CpuMeter,
    ProcessGroup,
    Topology,
    log,
    summary_ms,
)
from stage import Results, start_server, start_timer_worker

DEVICE_SETTINGS = ("WEBPUSH_VAPID_PRIVATE_KEY", "WEBPUSH_VAPID_PUBLIC_KEY", "WEBPUSH_VAPID_SUBJECT")


def fixture_get(url: str, path: str) -> Any:
    with urllib.request.urlopen(url + path, timeout=30) as answer:  # noqa: S310 -- loopback
        return json.loads(answer.read())


def fixture_clear(url: str) -> None:
    request = urllib.request.Request(url + "/_fixture/clear", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 -- loopback
        pass


def start_fixtures(procs: ProcessGroup, topo: Topology) -> tuple[dict[str, str], str]:
    """The fixtures' process; the Web Push settings its ``push.env`` gives, and its URL."""
    directory = TMP / f"push-fixtures-{topo.name}"
    env_file = directory / "push.env"
    env_file.unlink(missing_ok=True)
    args = [PYTHON, "-m", "tests.push.fixtures", "--dir", str(directory)]
    proc = procs.start(f"{topo.name}-push-fixtures", args, topo.env)
    deadline = time.monotonic() + 30
    while not env_file.exists():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"push fixtures did not start; see {proc.log}")
        time.sleep(0.1)
    time.sleep(0.2)  # written in one call; let it land
    settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return settings, settings["PUSH_FIXTURE_WEBPUSH_URL"]


def push_topology(topo: Topology, fixture_env: dict[str, str]) -> Topology:
    """The topology with Web Push on (the fixture's VAPID keys) and its loopback endpoint
    allowed; APNs and FCM stay off (no device of theirs here)."""
    env = {**topo.env, **{k: fixture_env[k] for k in DEVICE_SETTINGS}}
    env["WEBPUSH_ENDPOINT_HOSTS"] = "127.0.0.1"
    return replace(topo, env=env)


def wait_received(url: str, want: int, until: float) -> None:
    while time.monotonic() < until:
        if int(fixture_get(url, "/_fixture/count")["count"]) >= want:
            return
        time.sleep(0.5)


def baseline(res: Results, client: Client, url: str, rate: int, secs: float) -> dict[str, Any]:
    fixture_clear(url)
    host = url.removeprefix("http://")
    sent = client.call("fixture_post", fixture=host, rate=rate, duration=secs, prefix=res.tag("fx"))
    wait_received(url, len(sent["sent"]), time.monotonic() + 10)
    got = {r["key"]: r["mono"] for r in fixture_get(url, "/_fixture/received")}
    lat = [got[k] - at for k, at in sent["sent"].items() if k in got]
    fixture_clear(url)
    return {**summary_ms(lat), "sent": len(sent["sent"]), "lost": len(sent["sent"]) - len(lat)}


def invite_all(
    res: Results, stage: dict[str, Any], callees: list[int], rate: int, secs: float, tag: str
) -> dict[str, Any]:
    """One invitation to each of ``callees`` at ``rate``, kept ringing (no cancel); the load
    client's answer: when each was sent and answered, and the calls still open."""
    return stage["client"].call(
        "invite",
        base=stage["base"],
        callers=stage["callers"],
        callees=callees,
        rate=rate,
        duration=secs,
        prefix=res.tag(tag),
        cancel_after=-1.0,
        keep=True,
        drain=res.plan.drain,
    )


def no_device(
    res: Results, stage: dict[str, Any], rate: int, secs: float, callees: list[int]
) -> dict[str, Any]:
    """The same invitations to offline users without a push device (push on, nothing to send):
    the REST answer's own time at this rate, and the server CPU per invitation without push."""
    client, cpu = stage["client"], stage["cpu"]
    cpu.start()
    sent = invite_all(res, stage, callees, rate, secs, "nopush")
    usage = cpu.stop()
    wall = cpu.wall
    if sent.get("open"):
        client.call("cancel_calls", base=stage["base"], calls=sent["open"])
    answered: dict[str, float] = sent.get("answered", {})
    rest = summary_ms([answered[t] - at for t, at in sent["sent"].items() if t in answered])
    return {
        "p50": rest["p50"],
        "p99": rest["p99"],
        "sent": len(sent["sent"]),
        "cpu_ms": server_cpu_ms(usage, wall, len(sent["sent"])),
    }


def server_cpu_ms(usage: dict[str, float], wall: float, count: int) -> float:
    """CPU (ms) per invitation of the server side: everything but the client and fixtures."""
    busy = sum(v for k, v in usage.items() if k not in ("client", "fixtures"))
    return round(busy / 100 * wall * 1000 / count, 2) if count else float("nan")


def ring_phase(
    res: Results,
    topo: Topology,
    stage: dict[str, Any],
    rate: int,
    callees: list[int],
    bare: list[int],
) -> None:
    plan = res.plan
    url, client, cpu = stage["url"], stage["client"], stage["cpu"]
    secs = len(callees) / rate  # one invitation per push user
    base = baseline(res, client, url, rate, secs)
    plain = no_device(res, stage, rate, secs, bare)
    fixture_clear(url)
    cpu.start()
    sent = invite_all(res, stage, callees, rate, secs, "push")
    tags: dict[str, float] = sent["sent"]
    wait_received(url, len(tags), max(tags.values(), default=time.monotonic()) + plan.lost_after)
    usage = cpu.stop()
    rows = fixture_get(url, "/_fixture/received")
    rings: dict[str, list[float]] = {}
    problems = 0
    for r in rows:
        payload = r.get("payload") or {}
        problems += bool(r["problems"]) or r["status"] != 201
        if payload.get("type") == "call.ring":
            rings.setdefault(str(payload.get("extended_data")), []).append(r["mono"])
    lat = [min(rings[t]) - at for t, at in tags.items() if t in rings]
    # The split: the REST answer (invite written to 201 read), and the push after it (201 read
    # to the ring at the fixture; the worker starts on the commit, so it may be negative).
    answered: dict[str, float] = sent.get("answered", {})
    rest = [answered[t] - at for t, at in tags.items() if t in answered]
    after = [min(rings[t]) - answered[t] for t in tags if t in rings and t in answered]
    within = [v for v in lat if v <= plan.lost_after]
    row = {
        "topology": topo.name,
        "n": len(callees),
        "rate": rate,
        "secs": round(secs, 2),
        **summary_ms(lat),
        "sent": len(tags),
        "failed": sent["attempted"] - len(tags),
        "lost": len(tags) - len(within),
        "late": len(lat) - len(within),
        "duplicates": sum(len(v) - 1 for t, v in rings.items() if t in tags),
        "fixture_problems": problems,
        "statuses": sent["statuses"],
        "send_lag_max_ms": sent["send_lag_max_ms"],
        "rest_p50": summary_ms(rest)["p50"],
        "rest_p99": summary_ms(rest)["p99"],
        "after_p50": summary_ms(after)["p50"],
        "after_p99": summary_ms(after)["p99"],
        "nodevice_rest_p50": plain["p50"],
        "nodevice_rest_p99": plain["p99"],
        "nodevice_cpu_ms": plain["cpu_ms"],
        "cpu_ms": server_cpu_ms(usage, cpu.wall, len(tags)),
        "fixture_p50": base["p50"],
        "fixture_p99": base["p99"],
        "fixture_lost": base["lost"],
        "cpu": usage,
        "cpu_wall_s": round(cpu.wall, 2),
    }
    if sent.get("bodies"):
        res.notes.append(f"push {topo.name} {rate}/s: {sent['bodies'][:2]}")
    # Out of the measured window: cancel the calls, let their stop pushes land, start clean.
    if sent.get("open"):
        client.call("cancel_calls", base=stage["base"], calls=sent["open"])
        wait_received(url, len(rows) + len(sent["open"]), time.monotonic() + 15)
    fixture_clear(url)
    res.record(res.push, row, f"push {topo.name} N={len(callees)} {rate}/s", lat)
    log(
        f"  ring-push {topo.name:<10} N={len(callees):<5} {rate:>4}/s  p50 {row['p50']:>7} ms"
        f"  p99 {row['p99']:>7} ms  max {row['max']:>7} ms  sent {row['sent']:>5}"
        f"  lost {row['lost']}  failed {row['failed']}  dup {row['duplicates']}  REST p50/p99"
        f" {row['rest_p50']}/{row['rest_p99']} ms  after 201 p50/p99 {row['after_p50']}/"
        f"{row['after_p99']} ms  no-device REST p50/p99 {plain['p50']}/{plain['p99']} ms"
        f"  CPU ms/invite {row['cpu_ms']} (no device {plain['cpu_ms']})"
        f"  fixture p50/p99 {base['p50']}/{base['p99']} ms"
        f"  cpu {usage}  {row['statuses']}"
    )


def ring_push(topo: Topology, res: Results, first: int) -> None:
    """The part: users [first, first+N) get a Web Push device, [first+N, first+2N) call them,
    [first+2N, first+3N) are called without a device (the REST baseline)."""
    plan = res.plan
    n = plan.push_users
    callees = list(range(first, first + n))
    callers = list(range(first + n, first + 2 * n))
    bare = list(range(first + 2 * n, first + 3 * n))
    procs = ProcessGroup()
    client = None
    try:
        fixture_env, url = start_fixtures(procs, topo)
        ptopo = push_topology(topo, fixture_env)
        server = start_server(procs, ptopo, "push-server")
        groups: dict[str, Any] = {"server": [server.pid]}
        if topo.production:
            timers = start_timer_worker(procs, ptopo, "push-timer-worker")
            args = [PYTHON, "manage.py", "runworker", "push-delivery"]
            worker = procs.start(f"{topo.name}-push-worker", args, ptopo.env)
            groups.update({"push worker": [worker.pid], "timer worker": [timers.pid]})
        fixtures = procs.procs[0]
        client = Client(f"{topo.name}-push")
        groups.update({"fixtures": [fixtures.pid], "client": [client.pid]})
        if topo.production:
            groups.update({"postgres": "postgres", "redis": "redis-server"})
        base = f"127.0.0.1:{server.port}"
        reg = client.call(
            "push_register", base=base, fixture=url.removeprefix("http://"), users=callees
        )
        log(f"   {n} webpush devices registered in {reg['secs']} s: {reg['statuses']}")
        if reg.get("bodies"):
            res.notes.append(f"push register {topo.name}: {reg['bodies'][:2]}")
        stage = {"url": url, "client": client, "cpu": CpuMeter(groups), "base": base}
        stage["callers"] = callers
        for rate in plan.push_rates:
            ring_phase(res, topo, stage, rate, callees, bare)
    finally:
        if client is not None:
            client.close()
        procs.stop_all()


def push_rows(res: Results) -> list[list[Any]]:
    """The report's rows: figures, the fixture baseline and CPU per push."""
    out = []
    for r in res.push:
        lost = str(r["lost"])
        if r["late"]:
            lost += f" ({r['late']} late)"
        sent = str(r["sent"])
        if r["failed"]:
            sent += f" ({r['failed']} failed)"
        out.append(
            [r["topology"], r["n"], r["rate"], r["p50"], r["p99"], r["max"], sent, lost]
            + [r["rest_p50"], r["rest_p99"], r["nodevice_rest_p50"], r["nodevice_rest_p99"]]
            + [r["after_p50"], r["after_p99"], r["duplicates"], r["fixture_p50"], r["fixture_p99"]]
            + [r["cpu_ms"], r["nodevice_cpu_ms"], r["cpu"].get("fixtures", "")]
        )
    return out


PUSH_HEAD = (
    "topology|push users|rate/s|p50 ms|p99 ms|max ms|sent|lost|REST 201 p50 ms|REST 201 p99 ms"
    "|no device: REST p50 ms|no device: REST p99 ms|201 to push p50 ms|201 to push p99 ms"
    "|duplicates|fixture p50 ms|fixture p99 ms|server CPU ms / invite|no device: CPU ms / invite"
    "|fixture CPU %"
)
