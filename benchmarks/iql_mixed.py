"""IQL from a mixed dataset: does it beat the poor behaviour policy and approach the good one?

    python benchmarks/iql_mixed.py [--task micro] [--episodes 40] [--eval-episodes 10] [--steps 3000]

Records ``--episodes`` episodes of a good behaviour policy (``heuristic``) and as many of a poor
one (``random``) with ``esper collect``, trains ``esper run --policy iql`` on both datasets,
then ``esper evaluate`` runs IQL, heuristic and random on the same held-out episodes. Prints
one JSON object with the evaluation rows (mean ± std of final accuracy and return).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ESPER = [sys.executable, "-c", "from esper_core.cli.main import main; main()"]


def esper(*args: str) -> str:
    proc = subprocess.run([*ESPER, "--log-level", "warning", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.strip().splitlines()[-1])
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="micro")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        common = ["--task", args.task, "--seed", str(args.seed)]
        for policy in ("heuristic", "random"):
            esper("collect", "--policy", policy, "--episodes", str(args.episodes), "--out", str(root / policy), *common)
        esper("run", "--policy", "iql", "--dataset", f"{root / 'heuristic'},{root / 'random'}",
              "--policy-option", f"steps={args.steps}", "--out", str(root / "iql"), *common)
        evaluation = json.loads(esper("evaluate", "--policy-checkpoint", str(root / "iql" / "policy.pt"),
                                      "--episodes", str(args.eval_episodes), "--against", "heuristic,random",
                                      "--json"))
    rows = {p["policy"]: {k: round(p[k], 3) for k in ("final_accuracy_mean", "final_accuracy_std", "return_mean",
                                                       "return_std")} | {"fossilized": p["fossilized"],
                                                                         "culled": p["culled"]}
            for p in evaluation["policies"]}
    print(json.dumps({"task": args.task, "episodes_per_behaviour_policy": args.episodes, "steps": args.steps,
                      "eval_episodes": args.eval_episodes, "policies": rows}, indent=2))


if __name__ == "__main__":
    main()
