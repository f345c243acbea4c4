"""How a seed in TRAINING should learn: the straight-through objective against feedback.

A seed is germinated at a fixed epoch and kept in TRAINING to the end of the episode (G2 is
made unreachable), and after every epoch its gain over the no-seed path is measured on the
validation split (paired per example, with its standard error). Under the straight-through
objective the seed follows the host's ∂L/∂h and never sees the effect of its own output; under
feedback it is trained on the loss of the model with it switched in (host parameters
excluded). The objective that keeps the gain positive and growing is the one Kasmina uses.

    python benchmarks/growth_training_objective.py --seeds 0,1,2 --germinate-at 3 --slot block2 \
        --json docs/growth_objective.json > docs/growth_objective.md

Prints a Markdown table (``growth_study.py`` quotes ``docs/growth_objective.md`` in
docs/growth.md) and, with ``--json``, writes the per-epoch figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from growth_lib import resolve, threads

from esper_core.contracts.decisions import Decision, Op
from esper_core.contracts.events import EpochEnded, TelemetryEvent
from esper_core.setup.tasks import prepare_task
from esper_core.tolaria.episode import HostEpisode

OBJECTIVES = ("straight_through", "feedback")


def trajectory(*, objective: str, seed: int, slot: str, blueprint: str, germinate_at: int,
               task: str, training: dict[str, Any], task_options: dict[str, Any],
               epochs: int | None) -> list[dict[str, Any]]:
    """(epoch, gain, se) of one seed kept in TRAINING from ``germinate_at`` to the end."""
    resolved = resolve(task=task, policy="noop", seed=seed, epochs=epochs, training=training,
                       task_options=task_options, kasmina={"training_objective": objective},
                       gates={"g2_min_epochs": 10_000}, run={"slots": [slot]})
    _, env_task, _ = prepare_task(resolved)
    threads(1)
    events: list[TelemetryEvent] = []
    key = next(b.key for b in resolved.blueprints if b.name == blueprint)
    out = []
    with HostEpisode(resolved, env_task, episode=0, seed=seed, emit=events.append,
                     policy_name="fixed") as env:
        step = env.start()
        while not step.done:
            epoch = step.report.epoch
            decision = (Decision(op=Op.GERMINATE, slot=0, blueprint=key, reason="fixed epoch")
                        if epoch == germinate_at else Decision.wait("fixed schedule"))
            step = env.step(decision)
    for event in events:
        if isinstance(event, EpochEnded) and event.slots[0]["stage"] == "TRAINING":
            s = event.slots[0]
            out.append({"epoch": event.epoch, "gain": s["seed_gain"], "se": s["seed_gain_se"],
                        "val_accuracy": event.val_accuracy})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--task", default="shapes")
    parser.add_argument("--slot", default="block2")
    parser.add_argument("--blueprint", default="conv_light")
    parser.add_argument("--germinate-at", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for objective in OBJECTIVES:
        results[objective] = {}
        for seed in seeds:
            results[objective][seed] = trajectory(
                objective=objective, seed=seed, slot=args.slot, blueprint=args.blueprint,
                germinate_at=args.germinate_at, task=args.task, training={}, task_options={},
                epochs=args.epochs)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"`{args.blueprint}` in `{args.slot}` of the `{args.task}` host, germinated after epoch "
          f"{args.germinate_at} and kept in TRAINING; seed gain over the no-seed path (validation "
          f"points, mean ± standard error of the paired per-example differences), seeds "
          f"{', '.join(map(str, seeds))}:\n")
    n = min(len(t) for r in results.values() for t in r.values())
    header = "| TRAINING epoch | " + " | ".join(f"{o} (per seed)" for o in OBJECTIVES) + " | " + \
             " | ".join(f"{o} mean" for o in OBJECTIVES) + " |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(OBJECTIVES)))
    for k in range(n):
        cells, means = [], []
        for objective in OBJECTIVES:
            points = [results[objective][s][k] for s in seeds]
            cells.append(", ".join(f"{p['gain']:+.2f}±{p['se']:.2f}" for p in points))
            means.append(f"{statistics.fmean(p['gain'] for p in points):+.2f}")
        print(f"| {k + 1} | " + " | ".join(cells) + " | " + " | ".join(means) + " |")


if __name__ == "__main__":
    main()
