"""The end-of-run table printed by ``esper run`` (the same facts as ``summary.json``)."""

from __future__ import annotations

from typing import Any

from esper_core.presentation.table import format_table


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def format_training_summary(summary: dict[str, Any]) -> str:
    """The end-of-training table of a learned policy.

    The trainer owns its table: ``summary["report"]`` (``columns`` and ``rows``) when it gives
    one, otherwise every key of its ``history`` records; ``summary["shape"]`` says what it ran
    (e.g. rounds × environments × epochs)."""
    shape = f": {summary['shape']}" if summary.get("shape") else ""
    lines = [f"run {summary['run_id']}: trained {summary['policy']} on task {summary['task']}, seed "
             f"{summary['seed']}{shape}, {summary['wall_seconds']:.1f} s", ""]
    report = summary.get("report")
    if report:
        titles, rows = list(report["columns"]), [[_cell(v) for v in row] for row in report["rows"]]
    else:
        history = summary.get("history") or []
        titles = list(history[0]) if history else []
        rows = [[_cell(h.get(key)) for key in titles] for h in history]
    if rows:
        lines.append(format_table(titles, rows))
    if "policy_seconds" in summary:
        overhead = summary.get("policy_overhead")
        lines += ["", f"policy inference + updates: {summary['policy_seconds']:.1f} s, environments: "
                  f"{summary['env_seconds']:.1f} s ({_num(None if overhead is None else 100 * overhead, 1)} % policy)"]
    lines.append(f"policy checkpoint: {summary['policy_checkpoint']}")
    return "\n".join(lines)


def format_summary(summary: dict[str, Any]) -> str:
    if summary.get("training"):
        return format_training_summary(summary)
    lines = [
        f"run {summary['run_id']}: task {summary['task']}, policy {summary['policy']}, "
        f"seed {summary['seed']}, {summary['epochs']} epochs, {summary['wall_seconds']:.1f} s",
        "",
    ]

    # Tasks with loss metrics (text: perplexity, bits per byte) get the test loss and each metric.
    metric_names = list(summary.get("test_metrics") or {})
    loss_columns = ["test loss", *(f"test {name.replace('_', ' ')}" for name in metric_names)] if metric_names else []

    def row(name: str, s: dict[str, Any]) -> list[Any]:
        measured = s.get("test_metrics") or {}
        losses = ([_num(s.get("test_loss"), 4), *(_num(measured.get(m), 4) for m in metric_names)]
                  if loss_columns else [])
        return [name, _acc(s.get("test_accuracy")), *losses, _acc(s["final_accuracy"]), _acc(s["best_accuracy"]),
                s["host_params"], s["seed_params"]]

    rows = [row(summary["policy"], summary)]
    baseline = summary.get("baseline")
    if baseline:
        rows.append(row(f"{baseline['policy']} (baseline)", baseline))
    lines.append(format_table(["policy", "test acc %", *loss_columns, "final val %", "best val %", "host params",
                               "seed params"], rows))
    seeds = summary.get("seeds", [])
    if baseline:
        # The headline: the held-out test split, which neither the controller nor any gate saw
        # (validation accuracy is what the controller optimised, an optimistic figure).
        test, base_test = summary.get("test_accuracy"), baseline.get("test_accuracy")
        if test is not None and base_test is not None:
            delta, measure = test - base_test, "test accuracy"
        else:
            delta, measure = summary["final_accuracy"] - baseline["final_accuracy"], "final validation accuracy"
        line = (f"\ngain over the no-growth baseline: {delta:+.2f} points of {measure} "
                f"for {summary['seed_params']} fossilized parameters")
        # "seed params" counts what was kept for good; a seed still live when the episode ends
        # is in the final model too (blended in, or waiting in TRAINING), so say what it holds.
        live = [s for s in seeds if s["outcome"] == "live"]
        if live:
            held = sum(s.get("params") or 0 for s in live)
            line += (f" (the {len(live)} seed{'s' if len(live) > 1 else ''} still live at the end "
                     f"hold{'' if len(live) > 1 else 's'} {held} more)")
        lines.append(line)
    lines.append("")
    if seeds:
        lines.append(format_table(
            ["slot", "blueprint", "germinated", "outcome", "ended", "gain (TRAINING)", "dependence"],
            [[s["slot"], s["blueprint"], s["germinated_epoch"], s["outcome"],
              "-" if s["ended_epoch"] is None else s["ended_epoch"], _acc(s.get("seed_gain")),
              _acc(s["contribution"])] for s in seeds],
        ))
        lines.append("gain (TRAINING): validation accuracy with the seed switched fully in minus without, "
                     "before the host adapted to it; dependence: accuracy lost when the seed is removed "
                     "from the model that trained with it (overstates what it added)")
    else:
        lines.append("no seeds were germinated")
    return "\n".join(lines)
