"""PPO initialised by behaviour cloning of the heuristic: does it keep (or improve on) the heuristic?

    .venv/bin/python benchmarks/ppo_from_bc.py --out docs/ppo_from_bc.md

1. ``esper collect --policy heuristic`` records ``--collect`` episodes of the task (training seeds).
2. ``esper run --policy ppo --bc-dataset …`` clones them, then trains ``--rounds`` PPO rounds of
   ``--envs`` environments (worker processes).
3. ``esper evaluate`` runs the trained policy, the heuristic and noop on the same ``--episodes``
   held-out episodes (odd seeds training never uses) and reports test accuracy, paired.

Everything goes through the CLI a user runs; the markdown written to ``--out`` is the output.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from iql_mixed import esper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="shapes")
    parser.add_argument("--collect", type=int, default=8, help="heuristic episodes to clone")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--envs", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=5, help="held-out evaluation episodes per policy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a PPO option for the training run (e.g. entropy_coef=0); repeatable")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        common = ["--task", args.task, "--seed", str(args.seed)]
        esper("collect", "--policy", "heuristic", "--episodes", str(args.collect), "--out", str(root / "data"),
              *common)
        collected = time.perf_counter() - start
        esper("run", "--policy", "ppo", "--bc-dataset", str(root / "data"), "--rounds", str(args.rounds),
              "--envs", str(args.envs), "--workers", "--no-compare-baseline", "--out", str(root / "ppo"),
              *(f"--policy-option={o}" for o in args.policy_option), *common)
        summary = json.loads((root / "ppo" / "summary.json").read_text())
        trained = time.perf_counter() - start - collected
        evaluation = json.loads(esper("evaluate", "--policy-checkpoint", str(root / "ppo" / "policy.pt"),
                                      "--episodes", str(args.episodes), "--against", "heuristic,noop", "--json"))
    wall = time.perf_counter() - start
    bc = summary.get("bc") or {}
    lines = [
        "# PPO initialised by behaviour cloning of the heuristic",
        "",
        f"Written by `.venv/bin/python benchmarks/ppo_from_bc.py {' '.join(sys.argv[1:])}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, task `{args.task}`: {args.collect} heuristic "
        f"episodes cloned, then {args.rounds} PPO rounds × {args.envs} environments "
        f"({', '.join(args.policy_option) or 'PPO defaults'}); evaluation on "
        f"{args.episodes} held-out episodes (the same for every policy). Collect {collected:.0f} s, clone + "
        f"train {trained:.0f} s, all {wall:.0f} s on this machine (2 cores, shared).",
        "",
        "Cloning: held-out action agreement "
        + (f"{bc['held_out_agreement_before']:.2f} → {bc['held_out_agreement']:.2f}"
           if "held_out_agreement" in bc else "not reported")
        + f" (summary's `bc`: {json.dumps({k: v for k, v in bc.items() if not isinstance(v, (list, dict))})}).",
        "",
        "PPO rounds (mean return, mean final validation accuracy %): "
        + ", ".join(f"{h['mean_return']:+.2f} / {h['mean_final_accuracy']:.2f}" for h in summary.get("history", [])),
        "",
        "| policy | test acc % | final val % | params added | return | fossilized / culled |",
        "|---|---|---|---|---|---|",
    ]
    for p in evaluation["policies"]:
        lines.append(f"| {p['policy']} | {p['test_accuracy_mean']:.2f} ± {p['test_accuracy_std']:.2f} | "
                     f"{p['final_accuracy_mean']:.2f} ± {p['final_accuracy_std']:.2f} | "
                     f"{p['params_added_mean']:.0f} | {p['return_mean']:+.2f} ± {p['return_std']:.2f} | "
                     f"{p['fossilized']} / {p['culled']} |")
    lines += ["", "Paired test accuracy, PPO minus each (points, same episodes):", ""]
    for name, d in evaluation["paired_test_accuracy"].items():
        t = "undefined" if d["t"] is None else f"{d['t']:.2f}"
        lines.append(f"- {name}: {d['mean']:+.2f} ± {d['sd']:.2f} (t {t}, {d['n']} episodes)")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
