"""The table printed by ``esper evaluate``: each policy's held-out results side by side."""

from __future__ import annotations

from typing import Any

from esper_core.presentation.table import format_table


def format_evaluation(evaluation: dict[str, Any]) -> str:
    lines = [f"evaluation of {evaluation['checkpoint']} on task {evaluation['task']}: "
             f"{len(evaluation['held_out_seeds'])} held-out episodes of {evaluation['epochs']} epochs each"]
    options = evaluation.get("policy_options") or {}
    if options:
        lines.append(f"{evaluation['policies'][0]['policy']} acts with "
                     + ", ".join(f"{k} = {v!r}" for k, v in sorted(options.items())))
    lines.append("")
    rows = []
    for p in evaluation["policies"]:
        per_bp = ", ".join(f"{bp} {c.get('fossilized', 0)}F/{c.get('culled', 0)}C"
                           for bp, c in p["per_blueprint"].items()) or "-"
        test = ("-" if p.get("test_accuracy_mean") is None
                else f"{p['test_accuracy_mean']:.2f} ± {p['test_accuracy_std']:.2f}")
        rows.append([p["policy"], test, f"{p['final_accuracy_mean']:.2f} ± {p['final_accuracy_std']:.2f}",
                     f"{p['params_added_mean']:.0f} ± {p['params_added_std']:.0f}",
                     f"{p['return_mean']:+.2f} ± {p['return_std']:.2f}", p["fossilized"], p["culled"], per_bp])
    lines.append(format_table(["policy", "test acc %", "final val %", "params added", "return", "fossilized",
                               "culled", "per blueprint (F fossilized / C culled)"], rows))
    paired = evaluation.get("paired_test_accuracy") or {}
    if paired:
        trained = evaluation["policies"][0]["policy"]
        lines += ["", f"paired test accuracy, {trained} minus each (points over the same episodes):"]
        for name, d in paired.items():
            t = "t undefined" if d["t"] is None else f"t {d['t']:.2f}"
            lines.append(f"  − {name}: {d['mean']:+.2f} ± {d['sd']:.2f} ({t}, {d['n']} episodes)")
    return "\n".join(lines)
