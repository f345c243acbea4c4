"""Print a finished run the way the README shows it: one line per epoch (chosen epochs only),
the seed transitions under the epoch they happened in, then the run's summary table.

    .venv/bin/esper run --out /tmp/readme_run
    .venv/bin/python scripts/readme_run.py /tmp/readme_run [--every 4]

Every epoch with a seed transition or a decision other than WAIT is printed, plus every
``--every``-th epoch and the last one, so the README's block is a faithful excerpt of a real run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from esper_core.presentation.run_report import format_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--every", type=int, default=4)
    args = parser.parse_args()
    events = [json.loads(line) for line in (args.run_dir / "events.jsonl").read_text().splitlines()]
    summary = json.loads((args.run_dir / "summary.json").read_text())
    epochs = summary["epochs"]
    pending: list[str] = []
    decision: dict[int, str] = {}
    for e in events:
        if e["kind"] == "decision":
            text = e["op"] if e["op"] == "WAIT" else f"{e['op']} {e['slot']} {e.get('blueprint') or ''}".strip()
            decision[e["epoch"]] = text
    lines: list[str] = []
    stages: dict[int, str] = {}
    accuracy: dict[int, float] = {}
    for e in events:
        if e["kind"] == "epoch":
            accuracy[e["epoch"]] = e["val_accuracy"]
            stages[e["epoch"]] = " ".join(f"{s['slot']}={s['stage']}" for s in e["slots"])
    transitions: dict[int, list[str]] = {}
    for e in events:
        if e["kind"] == "seed_lifecycle" and e["to_stage"] not in ("EMBARGOED", "RESETTING", "DORMANT"):
            transitions.setdefault(e["epoch"], []).append(
                f"  seed {e['slot']}: {e['from_stage']} -> {e['to_stage']}  ({e['reason']})")
    for epoch in range(1, epochs + 1):
        shown = (epoch % args.every == 0 or epoch == epochs or epoch in transitions
                 or decision.get(epoch, "WAIT") != "WAIT")
        if not shown:
            continue
        lines.append(f"epoch {epoch:2d}/{epochs}  val {accuracy.get(epoch, float('nan')):6.2f}  "
                     f"{decision.get(epoch, 'WAIT'):<28} {stages.get(epoch, '')}")
        lines.extend(transitions.get(epoch, []))
    lines.extend(pending)
    print("\n".join(lines))
    print(format_summary(summary))


if __name__ == "__main__":
    main()
