"""What each blueprint is worth to a learner: the return, accuracy and size of growing it alone.

    .venv/bin/python benchmarks/blueprint_returns.py --task micro --seeds 0,1,2,3,4 --out docs/blueprint_returns.md

For every blueprint (the task's catalog plus the ten CNN anti-patterns by default) and every
seed, one episode of the heuristic offered that blueprint only (it germinates it from epoch 1 in
the cheapest slot, then runs its lifecycle and culls it when it does not help), in process,
exactly as ``esper run`` runs it (with every installed observer, so the anti-pattern penalty
terms count, unless ``--no-observers``); ``noop`` gives the no-growth baseline on the same seeds. The
table ranks the blueprints by mean return under the run's reward (``--preset``, default
``shaped``, with any ``--reward`` weight overrides): a learner that germinates blueprint *b* can at
best expect about that return, so the gap between good blueprints and anti-patterns is the
signal a policy has for learning to avoid the anti-patterns. Paired differences are against
noop on the same seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from growth_lib import resolve, run_episode, threads
from report import format_t, publish

from esper_core.paired import paired_difference

ANTIPATTERNS = ("correlated_noise", "asymmetric_bottleneck", "momentum_dampener", "sigmoid_sandwich",
                "gain_amplifier", "deep_linear_stack", "expensive_identity", "redundant_ensemble", "kaiming_mismatch",
                "division_by_feature")


def row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    fossilized = sum(1 for r in runs for e in r["lifecycle"] if e[4] == "FOSSILIZED")
    culled = sum(1 for r in runs for e in r["lifecycle"] if e[4] == "CULLED")
    return {"return": [r["return"] for r in runs], "test": [r["test_accuracy"] for r in runs],
            "added_params": statistics.fmean(r["added_params"] for r in runs), "fossilized": fossilized,
            "culled": culled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="micro")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--blueprints", default=None, help="comma-separated (default: the task's own + anti-patterns)")
    parser.add_argument("--preset", default="shaped", help="reward preset (shaped, sparse, minimal)")
    parser.add_argument("--no-observers", action="store_true",
                        help="run without the installed training observers (and so without the anti-pattern "
                             "penalty terms they feed); by default every installed one runs, as in `esper run`")
    parser.add_argument("--reward", action="append", default=[], metavar="TERM=WEIGHT")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    rewards = {k: float(v) for k, v in (r.split("=", 1) for r in args.reward)}
    preset: dict[str, Any] = {"reward_preset": args.preset, "observers": [] if args.no_observers else None}
    default = resolve(task=args.task, policy="heuristic", seed=0, rewards=rewards, run=preset)
    keys = args.blueprints.split(",") if args.blueprints else [b.name for b in default.blueprints] + list(ANTIPATTERNS)
    start = time.perf_counter()
    noop = row([run_episode(resolve(task=args.task, policy="noop", seed=s, rewards=rewards, run=preset))
                for s in seeds])
    rows = {}
    for key in keys:
        rows[key] = row([run_episode(resolve(task=args.task, policy="heuristic", seed=s, rewards=rewards,
                                             run={"blueprints": [key], **preset})) for s in seeds])
        print(key, statistics.fmean(rows[key]["return"]), file=sys.stderr)
    wall = time.perf_counter() - start
    ranked = sorted(rows.items(), key=lambda kv: -statistics.fmean(kv[1]["return"]))
    lines = [
        "# What each blueprint is worth to a learner",
        "",
        f"Written by `.venv/bin/python benchmarks/blueprint_returns.py {' '.join(sys.argv[1:])}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), task `{args.task}`, seeds {args.seeds}, reward "
        f"preset `{args.preset}`{' with weights ' + json.dumps(rewards) if rewards else ''}, "
        f"{'no observers' if args.no_observers else 'the installed observers (anti-pattern penalties included)'}"
        f"; {wall / 60:.1f} min on "
        "this machine (one thread). Each row: the heuristic offered that blueprint only; paired against noop on the "
        "same seeds.",
        "",
        f"noop: return {statistics.fmean(noop['return']):+.2f} ± {statistics.stdev(noop['return']):.2f}, test "
        f"{statistics.fmean(noop['test']):.2f} %.",
        "",
        "| blueprint | anti-pattern | return | return − noop (t) | test % − noop (t) | params added "
        "| fossilized / culled |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in ranked:
        dr, dt = paired_difference(r["return"], noop["return"]), paired_difference(r["test"], noop["test"])
        lines.append(f"| {key} | {'yes' if key in ANTIPATTERNS else ''} | {statistics.fmean(r['return']):+.2f} ± "
                     f"{statistics.stdev(r['return']):.2f} | {dr['mean']:+.2f} ({format_t(dr['t'])}) | "
                     f"{dt['mean']:+.2f} ({format_t(dt['t'])}) | {r['added_params']:.0f} | "
                     f"{r['fossilized']} / {r['culled']} |")
    good = [statistics.fmean(r["return"]) for k, r in rows.items() if k not in ANTIPATTERNS]
    bad = [statistics.fmean(r["return"]) for k, r in rows.items() if k in ANTIPATTERNS]
    if good and bad:
        lines += ["", f"Mean return of a germination: good blueprints {statistics.fmean(good):+.2f}, anti-patterns "
                      f"{statistics.fmean(bad):+.2f} (gap {statistics.fmean(good) - statistics.fmean(bad):+.2f}); "
                      f"best good {max(good):+.2f}, best anti-pattern {max(bad):+.2f}."]
    publish(lines, args.out, {"noop": noop, "blueprints": rows})


if __name__ == "__main__":
    main()
