"""Whole-command figures: ``esper --help`` latency (against importing its dependencies alone), the
cost of the default run's no-growth baseline (wall time with it, computed or cached, over
without it), and the default ``esper run``'s wall time,
time from the command to the end of its first epoch (the first ``epoch`` event's timestamp in
``events.jsonl`` minus the launch time), peak resident memory and outcome (heuristic vs the
no-seed baseline).

Peak memory is each process's own high-water mark (``wait4``), against the plain PyTorch
reference (``plain_reference.py``: the same host, data and epochs in a bare training loop)
measured the same way, as is the reference's time to the end of its first epoch. ``import
torch`` alone, timed inside its process and with its peak memory, is the floor under both.
Most of a small run's memory is torch itself, and a CUDA build of torch maps its CUDA
libraries even on a machine without a GPU, so with ``--cpu-python`` (an interpreter whose
torch is a CPU build, e.g. ``.venv-cpu/bin/python`` from ``scripts/setup-cpu-env.sh``) the run
and the reference are measured under that build too.

Every command runs with Python's bytecode cache on and the repository's sources compiled first
(``compileall``), as a user's commands run from their second time on (or from a wheel install):
an environment that sets ``PYTHONDONTWRITEBYTECODE`` would otherwise have every command
recompile Esper's sources, which cost ``esper --help`` 0.13 s on the 2-core CPU machine.

    python benchmarks/bench_cli.py [--help-repeats 7] [--skip-run] [--seed 0] [--cpu-python PATH]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = sorted(str(src) for src in HERE.parent.glob("esper-*/src"))
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_sources(python: str) -> None:
    """Write the bytecode cache of every distribution's sources for ``python``."""
    subprocess.run([python, "-m", "compileall", "-q", *SOURCES], check=True, env=CHILD_ENV,
                   capture_output=True)


def esper(python: str) -> list[str]:
    return [python, "-c", "from esper_core.cli.main import main; main()"]


def measured(argv: list[str]) -> tuple[float, float, str]:
    """Run ``argv`` (must succeed); its wall time (s), peak RSS (MB) and standard output."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=CHILD_ENV)
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        # wait4 gives this child's own high-water mark (RUSAGE_CHILDREN would be the largest
        # of every child so far, and includes short-lived helpers the child forks).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        stdout = out.read().decode()
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise SystemExit(f"{' '.join(argv[:4])} ... failed (exit {proc.returncode}): {tail[0]}")
    return wall, usage.ru_maxrss / 1024, stdout


def torch_import(python: str, repeats: int = 3) -> dict[str, float]:
    """``import torch`` alone: seconds inside the process (without interpreter start-up and
    teardown) and the process's peak RSS; medians of ``repeats``."""
    code = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
    runs = [measured([python, "-c", code]) for _ in range(repeats)]
    return {"seconds_median": round(statistics.median(float(out) for _, _, out in runs), 2),
            "peak_rss_mb_median": round(statistics.median(peak for _, peak, _ in runs), 1)}


def torch_build(python: str) -> str:
    out = subprocess.run([python, "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                         check=True, capture_output=True, text=True, env=CHILD_ENV).stdout.split()
    return f"{out[0]} ({'CPU build' if out[1] == 'None' else 'CUDA ' + out[1] + ' build'})"


#: what ``esper --help`` cannot avoid importing: its own dependencies
DEPENDENCIES = "import click, structlog, attrs, pluggy, importlib_metadata"


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=CHILD_ENV)
    return time.perf_counter() - start


def help_latency(repeats: int) -> dict[str, float]:
    """``esper --help`` against a process that only imports Esper's CLI dependencies, alternated
    (A B B A …) so load drift hits both; the goal is the ratio of the medians."""
    times: list[float] = []
    deps: list[float] = []
    for i in range(repeats):
        pair = [("help", [*esper(sys.executable), "--help"]), ("deps", [sys.executable, "-c", DEPENDENCIES])]
        for name, argv in pair if i % 2 == 0 else pair[::-1]:
            (times if name == "help" else deps).append(_timed(argv))
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3),
            "dependencies_median_s": round(statistics.median(deps), 3),
            "over_dependencies": round(statistics.median(times) / statistics.median(deps), 3),
            "goal_over_dependencies": 1.3}


def baseline_cost(seed: int, repeats: int) -> dict[str, object]:
    """The default run's wall time with its baseline — computed (an empty cache), and reused (the
    cache of the run before) — over the same run with ``--no-compare-baseline``, alternated."""
    walls: dict[str, list[float]] = {"with_baseline": [], "cached_baseline": [], "without_baseline": []}
    sources = set()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            # "cached" reuses the entry "with" wrote just before it, in the same cache folder.
            order = (["with_baseline", "cached_baseline", "without_baseline"] if i % 2 == 0
                     else ["without_baseline", "with_baseline", "cached_baseline"])
            for kind in order:
                cache = Path(tmp) / f"cache-{i}"  # fresh per pair: "with" never finds an entry
                env = {**CHILD_ENV, "ESPER_CACHE_DIR": str(cache)}
                out = Path(tmp) / f"{kind}-{i}"
                argv = [*esper(sys.executable), "--log-level", "warning", "run", "--seed", str(seed),
                        "--out", str(out)]
                if kind == "without_baseline":
                    argv.append("--no-compare-baseline")
                start = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True, env=env)
                walls[kind].append(time.perf_counter() - start)
                summary = json.loads((out / "summary.json").read_text())
                if "baseline" in summary:
                    sources.add(f"{kind}:{summary['baseline']['source']}")
    med = {k: statistics.median(v) for k, v in walls.items()}
    return {**{f"{k}_s": round(v, 1) for k, v in med.items()},
            "with_over_without": round(med["with_baseline"] / med["without_baseline"], 3),
            "cached_over_without": round(med["cached_baseline"] / med["without_baseline"], 3),
            "goal_with_over_without": 1.25, "baseline_sources": sorted(sources), "repeats": repeats}


def default_run(seed: int, python: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        launched = time.time()
        wall, peak, _ = measured([*esper(python), "--log-level", "warning", "run", "--seed", str(seed),
                               "--out", str(out)])
        summary = json.loads((out / "summary.json").read_text())
        events = (json.loads(line) for line in (out / "events.jsonl").read_text().splitlines())
        first_epoch = next(e["timestamp"] for e in events if e["kind"] == "epoch")
    epochs = summary["epochs"]
    plain_launched = time.time()
    _, plain_peak, plain_out = measured([python, str(HERE / "plain_reference.py"), "--seed",
                                         str(seed), "--epochs", str(epochs)])
    plain_first_epoch = json.loads(plain_out.strip().splitlines()[-1])["first_epoch_at"] - plain_launched
    return {
        "torch": torch_build(python),
        "seed": seed,
        "wall_s": round(wall, 1),
        "goal_wall_s": 90,
        "first_epoch_s": round(first_epoch - launched, 2),
        "goal_first_epoch_s": 4,
        "plain_reference_first_epoch_s": round(plain_first_epoch, 2),
        "first_epoch_over_plain_s": round(first_epoch - launched - plain_first_epoch, 2),
        "goal_first_epoch_over_plain_s": 0.5,
        "import_torch": torch_import(python),
        "peak_rss_mb": round(peak, 1),
        "plain_reference_peak_rss_mb": round(plain_peak, 1),
        "peak_rss_over_plain": round(peak / plain_peak, 3),
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
    parser.add_argument("--baseline-repeats", type=int, default=2,
                        help="alternated triples of default runs for the baseline's cost (0: skip)")
    parser.add_argument("--cpu-python", default=None,
                        help="also measure the default run under this interpreter (a CPU build of torch)")
    args = parser.parse_args()
    for python in {sys.executable, args.cpu_python or sys.executable}:
        compile_sources(python)
    result: dict[str, object] = {"esper_help": help_latency(args.help_repeats)}
    if not args.skip_run:
        result["default_run"] = default_run(args.seed, sys.executable)
        if args.baseline_repeats:
            result["baseline_cost"] = baseline_cost(args.seed, args.baseline_repeats)
        if args.cpu_python:
            result["default_run_cpu_torch"] = default_run(args.seed, args.cpu_python)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
