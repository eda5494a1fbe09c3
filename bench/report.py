"""The run's figures as tables (markdown), JSON and a latency plot, and the README's results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common import RESULTS, ROOT
from pushbench import PUSH_HEAD, push_rows
from stage import Results
from targets import baseline_for, cpu_ms_per_message, fmt, ratio, targets


def table(head: str, rows: list[list[Any]]) -> list[str]:
    """A markdown table; ``head`` names the columns separated by ``|``."""
    names = head.split("|")
    out = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return out


def pick(row: dict[str, Any], keys: str) -> list[Any]:
    """The values of space-separated ``keys`` (blank where a row lacks one)."""
    return [row.get(k, "") for k in keys.split()]


LATENCY = "p50 ms|p99 ms|max ms"


def storm_rows(res: Results) -> list[list[Any]]:
    rows = []
    for s in res.storms:
        frames = s.get("frames", {})
        counts = [frames.get("presence.changed", ""), frames.get("presence.snapshot", "")]
        keys = "scenario n connected connect_secs ready_p99_s rate p50 p99 max sent lost failed"
        rows.append(pick(s, keys) + counts + [s.get("subscribe_errors", "")])
    return rows


def invite_rows(res: Results) -> list[list[Any]]:
    rows = []
    for r in res.rows:
        if r["scenario"] not in ("invite", "cross"):
            continue
        base = baseline_for(res.rows, r["topology"], r["scenario"], r["rate"])
        sent = str(r["sent"])
        if r["failed"] or r["skipped"]:
            sent += f" ({r['failed']} failed, {r['skipped']} skipped)"
        relay = [base or "n/a", ratio(r["p99"], base), cpu_ms_per_message(r)]
        rows.append(pick(r, "scenario topology n rate p50 p99 max") + [sent, r["lost"], *relay])
    return rows


def markdown(res: Results, machine: str, started: str, secs: float) -> str:
    plan = res.plan
    relay_rows = [
        pick(r, "scenario topology n rate p50 p99 max sent lost") + [cpu_ms_per_message(r)]
        for r in res.rows
        if r["scenario"] in ("relay", "relay-x")
    ]
    cycle_rows = [
        pick(c, "topology pairs secs cycles per_sec")
        + [c["cycle_ms"]["p50"], c["cycle_ms"]["p99"], c["errors"]]
        + [", ".join(f"{k} {v:.0f}" for k, v in c["cpu"].items())]
        for c in res.cycles
    ]
    idle_keys = "topology n rss_mib kib_per_socket connect_rate ready_p99_s presence_frames"
    idle_rows = [
        pick(i, idle_keys + " settle_s storm_rate storm_secs storm_failed") for i in res.idle
    ]
    timer_rows = [
        pick(t, "topology pending")
        + [f"{t['sockets']} ({'yes' if t['connected_before_first_deadline'] else 'no'})"]
        + pick(t, "p50 p99 max expired more_than_once still_ringing")
        + [f"{t['cpu'].get('timer process', 0):.0f}"]
        for t in res.timers
    ]
    out = [
        f"Run `{plan.mode}` on {started} ({secs:.0f} s): {machine}. Every server socket "
        f"subscribes to {plan.watch} users' presence right after `session.ready`.",
        "",
        "**Targets of issue 9** (figures of this run; a quick run uses smaller N than the "
        "targets name, given in each figure).",
        "",
        *table("target|figure|bare relay, same run|ratio|status", targets(res)),
        "",
        f"**Connect storm** ({plan.storm_sockets} sockets opened at once on a fresh server, "
        f"invitations over REST at {plan.storm_rate}/s from the same moment; rung = "
        "`call.invitation_received`, or `session.ready` listing it; lost = not rung within "
        f"{plan.lost_after:.0f} s; `relay-storm`: the same sockets on a fresh bare relay, "
        "messages once they are connected).",
        "",
        *table(
            f"scenario|sockets|connected|connect s|ready p99 s|rate/s|{LATENCY}|sent|lost"
            "|REST failed|presence.changed frames|snapshots|subscribe errors",
            storm_rows(res),
        ),
        "",
        "**Invite to ring** (scenario 1: callee on the server that took the REST invite; "
        "scenario 5, `cross`: callee on the other server process). Latency from the REST "
        "invite written to the callee's socket holding `call.invitation_received`; baseline: the "
        "bare Channels relay (`relay`, `relay-x` across processes) at the same rate. Server CPU "
        "per invitation: the server processes' CPU from the first invite until every one rang "
        "(or the bound), divided by the invitations.",
        "",
        *table(
            f"scenario|topology|idle users|rate/s|{LATENCY}|sent|lost|relay p99 ms"
            "|p99 / relay p99|server CPU ms / invite",
            invite_rows(res),
        ),
        "",
        "**Baseline relay** (same stack: Daphne, Channels consumer, same channel layer; "
        "no database, no auth).",
        "",
        *table(
            f"relay|topology|idle sockets|rate/s|{LATENCY}|sent|lost|relay CPU ms / message",
            relay_rows,
        ),
        "",
        "**Full call cycles** (scenario 2: invite, ring, `call.ack` confirmed, accept, end; "
        "closed loop, one REST client per user; CPU in % of one core over the phase, which starts "
        "once the servers and the timer worker are quiet after the phase before).",
        "",
        *table(
            "topology|pairs|seconds|cycles|cycles/s|cycle p50 ms|cycle p99 ms|errors|CPU %",
            cycle_rows,
        ),
        "",
        "**Idle connections** (scenario 3: RSS growth of one server process divided by the "
        "sockets; reconnect storm: every socket cut at once, all reconnecting together).",
        "",
        *table(
            "topology|sockets|server RSS MiB|KiB / socket|connect rate/s|ready p99 s"
            "|presence.changed frames|server busy after connecting, s|reconnect rate/s"
            "|reconnect s|reconnect failed",
            idle_rows,
        ),
        "",
        f"**Timers** (scenario 4: pending invitations inserted in bulk, deadlines spread over "
        f"{plan.timer_spread:.0f} s, their users' sockets connected and subscribed, then the "
        "worker started; lateness = the timeout row's time past the deadline; `in time`: the "
        "sockets were connected before the first deadline).",
        "",
        *table(
            f"topology|pending|sockets (in time)|{LATENCY}|expired|expired twice"
            "|still ringing|timer process CPU %",
            timer_rows,
        ),
    ]
    if res.push:
        out += [
            "",
            "**Ring push** (issue 12, bench/pushbench.py: offline users, one Web Push device "
            "each, no socket; latency from the REST invite written to the local Web Push fixture "
            "holding the ring push, VAPID-signed and aes128gcm-encrypted by the server; one "
            f"invitation per push user per rate; lost = no ring within {plan.lost_after:.0f} s; "
            "split into the REST answer and the push after the `201`. Baselines at the same "
            "rate: the same invitations to offline users without a device, and bare POSTs from "
            "a client to the fixture. Server CPU per invite: server, workers, PostgreSQL and "
            "Redis over the phase, divided by the invitations).",
            "",
            *table(PUSH_HEAD, push_rows(res)),
        ]
    if res.notes:
        out += ["", "Notes: " + "; ".join(res.notes[:5])]
    return "\n".join(out) + "\n"


def plot(res: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: v for k, v in res.latencies.items() if v and not k.startswith(("timers", "push"))}
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
        ax.set_title(f"{topo} topology ({res.plan.mode} run); dashed: bare relay")
        ax.axhline(0.99, color="grey", linewidth=0.5)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_readme(tables: str, mode: str) -> None:
    readme = ROOT / "bench" / "README.md"
    if not readme.exists():
        return
    text = readme.read_text()
    start, end = f"<!-- results:{mode}:start -->", f"<!-- results:{mode}:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(f"{head}{start}\n{tables}{end}{tail}")


def write(res: Results, tables: str, started: str, machine: str, secs: float) -> None:
    """results-<mode>.md, .json and latency-<mode>.png, and the README's section for the mode."""
    mode = res.plan.mode
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"results-{mode}.md").write_text(tables)
    raw = {
        "mode": mode,
        "started": started,
        "machine": machine,
        "secs": round(secs, 1),
        "targets": targets(res),
        "storms": res.storms,
        "rates": res.rows,
        "cycles": res.cycles,
        "idle": res.idle,
        "timers": res.timers,
        "push": res.push,
    }
    (RESULTS / f"results-{mode}.json").write_text(json.dumps(raw, indent=1) + "\n")
    plot(res, RESULTS / f"latency-{mode}.png")
    update_readme(tables, mode)
