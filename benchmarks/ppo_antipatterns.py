"""Does PPO learn to avoid the anti-pattern blueprints? Train it with the ten anti-patterns in
the action space and compare the share of germinations that pick one early and late.

    python benchmarks/ppo_antipatterns.py [--seeds 0,1,2] [--rounds 30] [--envs 2] [--task micro]

For every seed: ``esper run --policy ppo`` with good CNN blueprints plus blueprints 24–33;
the trainer's per-round history has ``antipattern_share`` (anti-pattern germinations /
all germinations in that round). Reported: the pooled share over the first and over the last
``--window`` rounds, per seed and over all seeds. With 5 good and 10 bad blueprints a uniform
choice picks an anti-pattern 2/3 of the time. Prints one JSON object (needs esper-antipatterns).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ESPER = [sys.executable, "-c", "from esper_core.cli.main import main; main()"]
GOOD = ("conv_light", "conv_small", "norm", "depthwise", "attention")
BAD = ("correlated_noise", "asymmetric_bottleneck", "momentum_dampener", "sigmoid_sandwich", "gain_amplifier",
       "deep_linear_stack", "expensive_identity", "redundant_ensemble", "kaiming_mismatch", "division_by_feature")


def pooled(history: list[dict], rounds: range) -> tuple[int, int]:
    """(anti-pattern germinations, germinations) over ``rounds``."""
    bad = total = 0
    for h in (history[i] for i in rounds):
        share = h.get("antipattern_share")
        if share is not None:
            bad += round(share * h["germinations"])
            total += h["germinations"]
    return bad, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--envs", type=int, default=2)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--task", default="micro")
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    per_seed = {}
    totals = {"first": [0, 0], "last": [0, 0]}
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [*ESPER, "--log-level", "warning", "run", "--task", args.task, "--policy", "ppo", "--seed", str(seed),
                 "--rounds", str(args.rounds), "--envs", str(args.envs), "--blueprints", ",".join(GOOD + BAD),
                 "--policy-option", f"lr={args.lr}", "--out", str(Path(tmp) / "run"), "--json"],
                capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr.strip().splitlines()[-1])
        history = json.loads(proc.stdout[proc.stdout.index("{"):])["history"]
        first = pooled(history, range(0, args.window))
        last = pooled(history, range(len(history) - args.window, len(history)))
        for name, (bad, total) in (("first", first), ("last", last)):
            totals[name][0] += bad
            totals[name][1] += total
        per_seed[seed] = {
            "first_rounds": {"antipattern": first[0], "germinations": first[1],
                             "share": round(first[0] / first[1], 3) if first[1] else None},
            "last_rounds": {"antipattern": last[0], "germinations": last[1],
                            "share": round(last[0] / last[1], 3) if last[1] else None},
            "final_accuracy_first": round(
                sum(h["mean_final_accuracy"] for h in history[:args.window]) / args.window, 2),
            "final_accuracy_last": round(
                sum(h["mean_final_accuracy"] for h in history[-args.window:]) / args.window, 2),
        }
    print(json.dumps({
        "task": args.task, "rounds": args.rounds, "envs": args.envs, "window": args.window, "lr": args.lr,
        "uniform_share": round(len(BAD) / (len(BAD) + len(GOOD)), 3),
        "per_seed": per_seed,
        "pooled": {name: {"antipattern": b, "germinations": t, "share": round(b / t, 3) if t else None}
                   for name, (b, t) in totals.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
