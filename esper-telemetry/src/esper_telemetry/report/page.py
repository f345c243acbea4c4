"""One self-contained HTML page: a summary table, the seeds, and every figure as base64 PNG."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import frozen

from esper_telemetry.report.history import RunHistory

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #eee; }
"""


#: The two seed measures, named as the seed table heads them.
SEED_GAIN_LABEL = "gain over the no-seed path (TRAINING)"
DEPENDENCE_LABEL = "dependence (accuracy lost on removal)"
_SEED_NOTE = ("Gain: validation accuracy with the seed switched fully in minus without it, "
              "measured while the seed trained, before the host adapted to it. Dependence: "
              "accuracy lost when the seed is removed from the model that trained with it; it "
              "overstates what the seed added.")


@frozen(kw_only=True)
class FigureFile:
    name: str
    title: str
    caption: str
    path: Path


def _cell(value: Any, spec: str = "") -> str:
    if value is None:
        return "<td>-</td>"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="num">{html.escape(format(value, spec))}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _summary_rows(history: RunHistory) -> list[tuple[str, Any, str]]:
    s = history.summary
    last = history.epochs[-1]
    best = max(e.val_accuracy for e in history.epochs)
    recorded_baseline = s.get("baseline")
    baseline: Mapping[str, Any] = recorded_baseline if isinstance(recorded_baseline, Mapping) else {}
    test, base_test = _number(s.get("test_accuracy")), _number(baseline.get("test_accuracy"))
    gain = test - base_test if test is not None and base_test is not None else None
    # The held-out test split (seen by no controller or gate) leads; validation figures,
    # which the controller optimised, follow under their own name.
    return [
        ("run", history.run_id, ""),
        ("task", history.task, ""),
        ("policy", history.policy, ""),
        ("seed", s.get("seed"), "d"),
        ("episode shown", f"{history.episode} of {len(history.episodes)}", ""),
        ("epochs", len(history.epochs), "d"),
        ("test accuracy, held-out (%)", test, ".2f"),
        ("no-seed baseline test accuracy (%)", base_test, ".2f"),
        ("test gain over the baseline (points)", gain, "+.2f"),
        ("final val accuracy (%)", s.get("final_accuracy", last.val_accuracy), ".2f"),
        ("best val accuracy (%)", s.get("best_accuracy", best), ".2f"),
        ("no-seed baseline val accuracy (%)", baseline.get("final_accuracy"), ".2f"),
        ("host parameters", s.get("host_params", last.host_params), ",d"),
        ("seed parameters", s.get("seed_params", last.seed_params), ",d"),
        ("governor rollbacks", len(history.rollbacks), "d"),
        ("wall time (s)", s.get("wall_seconds"), ".1f"),
    ]


def _seed_rows(history: RunHistory) -> Sequence[Mapping[str, Any]]:
    seeds = history.summary.get("seeds")
    if isinstance(seeds, list) and seeds:
        return [s for s in seeds if isinstance(s, Mapping)]
    rows: list[dict[str, Any]] = []
    for event in history.lifecycle:
        stage = event.to_stage.upper()
        if stage == "GERMINATED":
            rows.append({"slot": event.slot, "blueprint": event.blueprint,
                         "germinated_epoch": event.epoch, "outcome": "live"})
        elif stage in ("FOSSILIZED", "CULLED"):
            for row in reversed(rows):
                if row["slot"] == event.slot and row["outcome"] == "live":
                    row.update(outcome=stage.lower(),
                               ended_epoch=event.epoch)
                    break
    return rows


def render_page(history: RunHistory, figures: Sequence[FigureFile]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Esper run {html.escape(history.run_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Esper run {html.escape(history.run_id)}</h1>",
        "<h2>Summary</h2><table>",
    ]
    for label, value, spec in _summary_rows(history):
        parts.append(f"<tr><th>{html.escape(label)}</th>{_cell(value, spec)}</tr>")
    parts.append("</table>")
    seeds = _seed_rows(history)
    if seeds:
        parts.append("<h2>Seeds</h2><table><tr><th>slot</th><th>blueprint</th>"
                     "<th>germinated</th><th>ended</th><th>outcome</th>"
                     f"<th>{html.escape(SEED_GAIN_LABEL)} (points)</th>"
                     f"<th>{html.escape(DEPENDENCE_LABEL)} (points)</th></tr>")
        for seed in seeds:
            parts.append("<tr>" + "".join((
                _cell(seed.get("slot")), _cell(seed.get("blueprint")),
                _cell(seed.get("germinated_epoch"), "d"), _cell(seed.get("ended_epoch"), "d"),
                _cell(seed.get("outcome")), _cell(seed.get("seed_gain"), "+.2f"),
                _cell(seed.get("contribution"), "+.2f"),
            )) + "</tr>")
        parts.append(f"</table><p>{html.escape(_SEED_NOTE)}</p>")
    for figure in figures:
        data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
        parts.append(
            f'<h2>{html.escape(figure.title)}</h2><figure id="{html.escape(figure.name)}">'
            f'<img alt="{html.escape(figure.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
