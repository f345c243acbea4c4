"""PPO figures: the policy's share of training time, and environment throughput.

    python benchmarks/bench_ppo.py [--skip-overhead] [--steps-task micro] [--quick]

* ``overhead``: one PPO round in the default configuration (the ``shapes`` task, 4
  environments × 25 epochs, in-process): seconds spent in observation building, policy
  inference and the PPO update, as a fraction of the seconds spent training and validating the
  hosts (goal ≤ 5 %). Taken from the trainer's own timers (``policy_seconds`` / ``env_seconds``).
* ``steps_per_second``: environment steps (one step = one epoch of one host plus the decision)
  per wall-clock second with N = 1, 2, 4 environments, in-process and in worker processes, on
  ``--steps-task`` (default ``micro``), one round each.

Runs ``esper run --policy ppo`` in subprocesses; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ESPER = [sys.executable, "-c", "from esper_core.cli.main import main; main()"]


def train(args: list[str]) -> tuple[dict[str, Any], float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        proc = subprocess.run([*ESPER, "--log-level", "warning", "run", "--policy", "ppo", "--out", str(out),
                               "--json", *args], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(proc.stderr.strip().splitlines()[-1])
        return json.loads(proc.stdout[proc.stdout.index("{"):]), wall


def overhead(rounds: int) -> dict[str, object]:
    summary, wall = train(["--rounds", str(rounds)])
    return {
        "task": summary["task"], "envs": summary["envs"], "episode_length": summary["episode_length"],
        "rounds": summary["rounds"], "policy_s": summary["policy_seconds"], "env_s": summary["env_seconds"],
        "ratio": round(summary["policy_seconds"] / summary["env_seconds"], 4), "goal": 0.05,
        "wall_s": round(wall, 1),
    }


def throughput(task: str, counts: list[int]) -> dict[str, object]:
    out: dict[str, object] = {"task": task}
    for workers in (False, True):
        for n in counts:
            summary, _ = train(["--task", task, "--rounds", "1", "--envs", str(n),
                                "--workers" if workers else "--no-workers"])
            steps = n * int(summary["episode_length"])
            key = f"{'workers' if workers else 'in_process'}_n{n}"
            out[key] = round(steps / (summary["policy_seconds"] + summary["env_seconds"]), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--steps-task", default="micro")
    parser.add_argument("--quick", action="store_true", help="N = 1, 2 only")
    args = parser.parse_args()
    result: dict[str, object] = {}
    if not args.skip_overhead:
        result["overhead"] = overhead(rounds=1)
    result["steps_per_second"] = throughput(args.steps_task, [1, 2] if args.quick else [1, 2, 4])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
