"""Plot two benchmark runs side by side: the README's "this round beside the previous one".

    python bench/compare.py OLD.json NEW.json OUT.png [--old-label L] [--new-label L]

OLD and NEW are ``results-<name>.json`` files of ``bench/run.py`` (a previous run's from git:
``git show REV:bench/results/results-quick.json > old.json``). The plot has three panels: the
p99 of every invite-to-ring scenario both runs measured (log scale, the bare relay's of the new
run beside them), full call cycles per second, and the server CPU per invitation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from targets import baseline_for, cpu_ms_per_message, find


def _rows(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Invite-to-ring rows by label: storms first, then each scenario, topology and rate."""
    out = {}
    for r in run.get("storms", []):
        out[f"{r['scenario']} N={r['n']} {r['rate']}/s"] = r
    for r in run.get("rates", []):
        out[f"{r['scenario']} {r['topology']} {r['rate']}/s"] = r
    return out


def plot(old: dict[str, Any], new: dict[str, Any], out: Path, labels: tuple[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before, after = _rows(old), _rows(new)
    rings = [k for k in after if k in before and not k.startswith("relay")]

    def relay_p99(row: dict[str, Any]) -> float | None:
        """The bare relay's p99 in the new run, for this scenario's row."""
        if row["scenario"] == "storm":
            storm = find(new.get("storms", []), scenario="relay-storm")
            return float(storm["p99"]) if storm else None
        return baseline_for(new.get("rates", []), row["topology"], row["scenario"], row["rate"])

    fig, (ax1, ax2, ax3) = plt.subplots(
        1, 3, figsize=(17, 5.5), gridspec_kw={"width_ratios": [4, 1, 1.4]}
    )
    xs = range(len(rings))
    width = 0.38
    ax1.bar([x - width / 2 for x in xs], [before[k]["p99"] for k in rings], width, label=labels[0])
    ax1.bar([x + width / 2 for x in xs], [after[k]["p99"] for k in rings], width, label=labels[1])
    for x, key in zip(xs, rings, strict=True):
        base = relay_p99(after[key])
        if base is not None:
            ax1.plot([x - 0.45, x + 0.45], [base] * 2, "k--", linewidth=1)
    ax1.plot([], [], "k--", linewidth=1, label=f"bare relay, {labels[1]}")
    ax1.set_yscale("log")
    ax1.set_ylabel("invite to ring, p99 (ms, log)")
    ax1.set_xticks(list(xs), rings, rotation=25, ha="right", fontsize=8)
    ax1.legend(fontsize=8)
    ax1.grid(True, axis="y", which="both", alpha=0.3)

    topos = [c["topology"] for c in new.get("cycles", [])]
    old_cycles = {c["topology"]: c["per_sec"] for c in old.get("cycles", [])}
    xs = range(len(topos))
    ax2.bar([x - width / 2 for x in xs], [old_cycles.get(t, 0) for t in topos], width)
    ax2.bar([x + width / 2 for x in xs], [c["per_sec"] for c in new["cycles"]], width)
    ax2.set_xticks(list(xs), topos, fontsize=8)
    ax2.set_ylabel("full call cycles per second")
    ax2.grid(True, axis="y", alpha=0.3)

    cpu = [k for k in rings if k.startswith("invite") and k.endswith(" 100/s")]
    xs = range(len(cpu))
    ax3.bar([x - width / 2 for x in xs], [cpu_ms_per_message(before[k]) or 0 for k in cpu], width)
    ax3.bar([x + width / 2 for x in xs], [cpu_ms_per_message(after[k]) or 0 for k in cpu], width)
    ax3.set_xticks(list(xs), [k.replace("invite ", "") for k in cpu], fontsize=8)
    ax3.set_ylabel("server CPU per invitation (ms)")
    ax3.axhline(3, color="grey", linewidth=0.8, linestyle=":")
    ax3.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"{labels[0]} vs {labels[1]} (issue 9's target for CPU: 3 ms, dotted)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--old-label", default="previous run")
    parser.add_argument("--new-label", default="this run")
    args = parser.parse_args()
    old, new = (json.loads(p.read_text()) for p in (args.old, args.new))
    plot(old, new, args.out, (args.old_label, args.new_label))


if __name__ == "__main__":
    main()
