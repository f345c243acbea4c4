"""The end-of-run table printed by ``esper run`` (the same facts as ``summary.json``)."""

from __future__ import annotations

from typing import Any

from esper_core.cli.table import format_table


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"run {summary['run_id']}: task {summary['task']}, policy {summary['policy']}, "
        f"seed {summary['seed']}, {summary['epochs']} epochs, {summary['wall_seconds']:.1f} s",
        "",
    ]
    rows = [[summary["policy"], _acc(summary["final_accuracy"]), _acc(summary["best_accuracy"]),
             summary["host_params"], summary["seed_params"]]]
    baseline = summary.get("baseline")
    if baseline:
        rows.append([f"{baseline['policy']} (baseline)", _acc(baseline["final_accuracy"]),
                     _acc(baseline["best_accuracy"]), baseline["host_params"], baseline["seed_params"]])
    lines.append(format_table(["policy", "final acc %", "best acc %", "host params", "seed params"], rows))
    if baseline:
        delta = summary["final_accuracy"] - baseline["final_accuracy"]
        lines.append(f"\nfinal accuracy vs baseline: {delta:+.2f} points "
                     f"for {summary['seed_params']} added parameters")
    seeds = summary.get("seeds", [])
    lines.append("")
    if seeds:
        lines.append(format_table(
            ["slot", "blueprint", "germinated", "outcome", "ended", "contribution"],
            [[s["slot"], s["blueprint"], s["germinated_epoch"], s["outcome"],
              "-" if s["ended_epoch"] is None else s["ended_epoch"], _acc(s["contribution"])] for s in seeds],
        ))
    else:
        lines.append("no seeds were germinated")
    return "\n".join(lines)
