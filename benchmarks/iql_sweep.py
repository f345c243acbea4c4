"""IQL option variants trained on the same recorded data, each paired with the behaviour policies on
the same held-out episodes.

    .venv/bin/python benchmarks/iql_sweep.py --datasets /tmp/learned/heuristic-0,/tmp/learned/random-0 \\
        --variant beta=3 --variant beta=30 --work /tmp/iql_sweep --out docs/iql_sweep_shapes.md

Each ``--variant`` (``KEY=VALUE`` IQL options joined by ``+``) trains ``esper run --policy iql`` on
``--datasets``; the options of the trained policy as it acts (``support_threshold``) go to
``esper evaluate --policy-option`` instead, so variants that differ only in them share one
training. The first variant is evaluated together with ``--against`` (the behaviour
policies); the others alone, on the same held-out seeds (checked), so every row is paired with
the same behaviour episodes and the behaviours are run once. ``--work`` keeps each finished step,
as ``learned_controllers.py`` does (whose helpers this uses); the markdown written to ``--out``
is the output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from learned_controllers import evaluate, mean_sd, parallel, shown_arguments, timed
from report import format_t, publish
from work_folder import claim_work

from esper_core.paired import paired_difference

#: options of the trained policy as it acts (esper evaluate --policy-option), not of its training
ACT_OPTIONS = ("support_threshold",)


def slug(options: list[str]) -> str:
    return "iql-" + "_".join(options).replace("=", "").replace(".", "p")


def split_options(options: list[str]) -> tuple[list[str], list[str]]:
    """A variant's options: those of its training, and those of the trained policy as it acts."""
    acting = [o for o in options if o.partition("=")[0].strip() in ACT_OPTIONS]
    return [o for o in options if o not in acting], acting


def parse_variant(variant: str) -> list[str]:
    options = [o.strip() for o in variant.split("+") if o.strip()]
    if not options or any("=" not in o or o.startswith("=") for o in options):
        raise SystemExit(f"--variant {variant!r}: expected KEY=VALUE IQL options joined by '+', "
                         "e.g. beta=10+steps=6000")
    return options


def difference(d: dict[str, Any]) -> str:
    return f"{d['mean']:+.2f} ({format_t(d['t'], 2)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", required=True, help="comma-separated `esper collect` directories")
    parser.add_argument("--variant", action="append", required=True, help="IQL options, KEY=VALUE joined by '+'")
    parser.add_argument("--against", default="heuristic,random", help="the behaviour policies to pair with")
    parser.add_argument("--task", default="shapes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--eval-seed", type=int, default=7000,
                        help="held-out episodes' seed (another value confirms a choice on fresh episodes)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--note", default=None, help="a paragraph put under the title")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    variants = {v: parse_variant(v) for v in args.variant}
    missing = [d for d in args.datasets.split(",") if not (Path(d) / "dataset.json").is_file()]
    if missing:
        raise SystemExit(f"--datasets: not an `esper collect` directory: {', '.join(missing)}")
    # Variants train in folders of their own; what every one of them shares must not change.
    claim_work(args.work, {"datasets": args.datasets, "task": args.task, "seed": args.seed})
    timings_file = args.work / "timings.json"
    timings: dict[str, float] = json.loads(timings_file.read_text()) if timings_file.exists() else {}

    parts = {v: split_options(options) for v, options in variants.items()}
    trained_in = {v: args.work / slug(training) for v, (training, _) in parts.items()}
    trainings = {trained_in[v]: training for v, (training, _) in parts.items()}
    runs = [("run", "--policy", "iql", "--dataset", args.datasets, *(f"--policy-option={o}" for o in options),
             "--no-compare-baseline", "--out", str(out), "--task", args.task, "--seed", str(args.seed))
            for out, options in trainings.items() if not (out / "summary.json").exists()]
    timed("train", timings, parallel, runs, args.jobs)
    evaluations = {}
    for i, (v, options) in enumerate(variants.items()):
        evaluations[v] = timed(f"evaluate {v}", timings, evaluate, args.work, slug(options),
                               trained_in[v] / "policy.pt", args.against if i == 0 else "", args.episodes,
                               args.jobs, args.eval_seed, parts[v][1])
        timings_file.write_text(json.dumps(timings))
    first = evaluations[next(iter(variants))]
    for v, e in evaluations.items():
        if e["held_out_seeds"] != first["held_out_seeds"]:
            raise SystemExit(f"variant {v!r} ran other held-out episodes than the first: not paired")
    behaviours = first["policies"][1:]
    better = max(behaviours, key=lambda r: statistics.fmean(r["returns"]))

    lines = [
        "# IQL variants on recorded data",
        "",
        f"Written by `.venv/bin/python benchmarks/iql_sweep.py {' '.join(shown_arguments(sys.argv[1:]))}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), task `{args.task}`, the default reward, on this "
        f"machine (2 CPU cores, {args.jobs} processes side by side). {args.episodes} held-out episodes per policy "
        f"(`esper evaluate --seed` {args.eval_seed} onwards), the same for every row. Wall time per step: "
        + ", ".join(f"{k} {s / 60:.1f} min" for k, s in timings.items()) + ".",
        "",
        *([args.note, ""] if args.note else []),
        "| policy | test acc % | params added (mean) | return | fossilized / culled | return − "
        f"{better['policy']} (t) | test − {better['policy']} (t) | episodes returning exactly {better['policy']}'s "
        "| IQL's last mean weight |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows: dict[str, Any] = {}
    for row in behaviours:
        lines.append(f"| {row['policy']} | {mean_sd(row['test_accuracies'])} | {row['params_added_mean']:.0f} | "
                     f"{mean_sd(row['returns'])} | {row['fossilized']} / {row['culled']} | | | | |")
    for v, e in evaluations.items():
        row = e["policies"][0]
        ret = paired_difference(row["returns"], better["returns"])
        acc = paired_difference(row["test_accuracies"], better["test_accuracies"])
        history = json.loads((trained_in[v] / "summary.json").read_text()).get("history") or [{}]
        weight = history[-1].get("mean_weight")
        # the same actions on a deterministic episode give bit-identical returns
        same = sum(a == b for a, b in zip(row["returns"], better["returns"], strict=True))
        rows[v] = {"returns": row["returns"], "test_accuracies": row["test_accuracies"], "return_vs_better": ret,
                   "test_vs_better": acc, "same_return_episodes": same, "last_mean_weight": weight}
        lines.append(f"| iql {v} | {mean_sd(row['test_accuracies'])} | {row['params_added_mean']:.0f} | "
                     f"{mean_sd(row['returns'])} | {row['fossilized']} / {row['culled']} | {difference(ret)} | "
                     f"{difference(acc)} | {same} of {len(row['returns'])} | "
                     f"{'—' if weight is None else round(weight, 2)} |")
    lines += ["", f"The better behaviour policy by mean return is `{better['policy']}`; a variant meets the goal "
              "(IQL ≥ the better behaviour policy's mean return) where its return difference is ≥ 0."]
    publish(lines, args.out, {"behaviours": behaviours, "variants": rows, "better": better["policy"],
                              "timings": timings})

if __name__ == "__main__":
    main()
