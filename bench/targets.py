"""Issue 9's targets, each with this run's figure, the bare relay's in the same run, met or not."""

from __future__ import annotations

from typing import Any

from stage import Results

RATIO_BOUND = 3.0  # issue 9: invite-to-ring p99 at most 3x the bare relay's in the same run


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 100 else f"{v:.2f}"
    return str(v)


def find(rows: list[dict[str, Any]], **want: Any) -> dict[str, Any] | None:
    """The last row matching every field of ``want`` (the highest level, if several)."""
    hits = [r for r in rows if all(r.get(k) == v for k, v in want.items())]
    return hits[-1] if hits else None


def baseline_for(rows: list[dict[str, Any]], topo: str, scenario: str, rate: int) -> float | None:
    base = {"invite": "relay", "cross": "relay-x"}[scenario]
    row = find(rows, topology=topo, scenario=base, rate=rate)
    return float(row["p99"]) if row else None


def cpu_ms_per_message(row: dict[str, Any]) -> float | None:
    """Server-side CPU (servers, timer worker or relays) over the phase, per message sent."""
    if not row.get("sent") or "cpu_wall_s" not in row:
        return None
    pct = sum(v for k, v in row["cpu"].items() if k.startswith(("server", "timer", "relay")))
    return round(pct / 100 * row["cpu_wall_s"] / row["sent"] * 1000, 2)


def ratio(value: float, base: float | None) -> str:
    return f"{value / base:.1f}×" if base else "n/a"


def status(met: bool, at_target_scale: bool, target_n: int) -> str:
    """Met or not; a quick run's smaller N meeting a bound is not the target met."""
    if not met:
        return "not met"
    return "**met**" if at_target_scale else f"met at this N only (the target's: {target_n:,})"


def _ring_target(
    name: str,
    row: dict[str, Any] | None,
    relay: dict[str, Any] | None,
    need_no_loss: bool,
    target_n: int = 0,
) -> list[str]:
    if row is None:
        return [name, "not run", "", "", ""]
    base = float(relay["p99"]) if relay else None
    met = base is not None and row["p99"] <= RATIO_BOUND * base
    if need_no_loss:
        met = met and row["lost"] == 0
    return [
        name,
        f"N={row['n']}, {row['rate']}/s: p99 {fmt(row['p99'])} ms, lost {row['lost']} of "
        f"{row['sent']}" + (f", {row['failed']} REST failed" if row.get("failed") else ""),
        f"p99 {fmt(base)} ms" if base else "n/a",
        ratio(row["p99"], base),
        status(met, row["n"] >= target_n, target_n),
    ]


def targets(res: Results) -> list[list[str]]:
    """Issue 9's targets: [target, figure, relay figure of this run, ratio, met or not]."""
    top = max(res.plan.s1_levels)
    out = [
        _ring_target(
            "connect storm, 1,000 sockets, invites at 100/s right after, one process: "
            "p99 ≤ 3× relay p99, 0 lost",
            find(res.storms, scenario="storm"),
            find(res.storms, scenario="relay-storm"),
            True,
            1000,
        ),
        _ring_target(
            "10,000 sockets online, one process, 200 invites/s: p99 ≤ 3× relay p99, 0 lost",
            find(res.rows, scenario="invite", topology="embedded", n=top, rate=200),
            find(res.rows, scenario="relay", topology="embedded", rate=200),
            True,
            10_000,
        ),
        _ring_target(
            "production topology, 100 invites/s: p99 ≤ 3× relay p99",
            find(res.rows, scenario="invite", topology="production", n=top, rate=100),
            find(res.rows, scenario="relay", topology="production", rate=100),
            False,
        ),
    ]
    cyc = find(res.cycles, topology="production")
    name = "production topology, full cycles, 0 errors: ≥ 200/s (stretch 500)"
    if cyc is None:
        out.append([name, "not run", "", "", ""])
    else:
        met = cyc["per_sec"] >= 200 and cyc["errors"] == 0
        out.append(
            [
                name,
                f"{cyc['per_sec']}/s with {cyc['pairs']} pairs, {cyc['errors']} errors",
                "n/a",
                "",
                "**met**" if met else "not met",
            ]
        )
    for topo in ("embedded", "production"):
        inv = find(res.rows, scenario="invite", topology=topo, rate=100)
        rel = find(res.rows, scenario="relay", topology=topo, rate=100)
        name = f"per-invitation server CPU, {topo}, 100/s: ≤ 3 ms"
        ms = cpu_ms_per_message(inv) if inv else None
        if ms is None:
            out.append([name, "not run", "", "", ""])
            continue
        base = cpu_ms_per_message(rel) if rel else None
        out.append(
            [
                name,
                f"{ms} ms",
                f"{base} ms per message" if base else "n/a",
                ratio(ms, base),
                "**met**" if ms <= 3 else "not met",
            ]
        )
    for t in res.timers:
        if t["pending"] != max(res.plan.timer_counts):
            continue
        once = t["more_than_once"] == 0 and t["still_ringing"] == 0 and t["expired"] == t["pending"]
        met = t["p99"] <= 100 and once
        # The target's load: 100,000 due over 60 s (a quick run's is smaller).
        full = t["pending"] >= 100_000 and t["pending"] / res.plan.timer_spread >= 100_000 / 60
        out.append(
            [
                f"timers, 100,000 pending over 60 s, {t['topology']}: p99 lateness ≤ 100 ms, each "
                "exactly once",
                f"{t['pending']} over {res.plan.timer_spread:.0f} s: p99 {fmt(t['p99'])} ms; "
                f"expired {t['expired']}, twice {t['more_than_once']}, "
                f"still ringing {t['still_ringing']}",
                "n/a",
                "",
                status(met, full, 100_000),
            ]
        )
    return out
