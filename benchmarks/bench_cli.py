"""Whole-command figures: ``esper --help`` latency, and the default ``esper run``'s wall time,
time from the command to the end of its first epoch (the first ``epoch`` event's timestamp in
``events.jsonl`` minus the launch time), peak resident memory and outcome (heuristic vs the
no-seed baseline).

    python benchmarks/bench_cli.py [--help-repeats 7] [--skip-run] [--seed 0]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ESPER = [sys.executable, "-c", "from esper_core.cli.main import main; main()"]


def help_latency(repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([*ESPER, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "goal_s": 0.3}


def default_run(seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        launched = time.time()
        start = time.perf_counter()
        subprocess.run([*ESPER, "--log-level", "warning", "run", "--seed", str(seed), "--out", str(out)],
                       check=True, capture_output=True)
        wall = time.perf_counter() - start
        summary = json.loads((out / "summary.json").read_text())
        events = (json.loads(line) for line in (out / "events.jsonl").read_text().splitlines())
        first_epoch = next(e["timestamp"] for e in events if e["kind"] == "epoch")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seed": seed,
        "wall_s": round(wall, 1),
        "goal_wall_s": 90,
        "first_epoch_s": round(first_epoch - launched, 2),
        "goal_first_epoch_s": 4,
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "final_accuracy": summary["final_accuracy"],
        "baseline_final_accuracy": summary["baseline"]["final_accuracy"],
        "seed_params": summary["seed_params"],
        "seeds": [f"{s['blueprint']}@{s['slot']}:{s['outcome']}" for s in summary["seeds"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--help-repeats", type=int, default=7)
    parser.add_argument("--skip-run", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result: dict[str, object] = {"esper_help": help_latency(args.help_repeats)}
    if not args.skip_run:
        result["default_run"] = default_run(args.seed)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
