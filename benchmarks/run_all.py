"""Run every benchmark in this folder and write ``docs/benchmarks.md`` (and a JSON copy).

    .venv/bin/python benchmarks/run_all.py [--only kasmina,cnn] [--json benchmarks/results/latest.json]
        [--cpu-python .venv-cpu/bin/python]

Each ``bench_*.py`` prints one JSON object on stdout; this script runs them one after another
(never in parallel: they time things) and renders every figure into a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"
CPU_PYTHON = HERE.parent / ".venv-cpu" / "bin" / "python"


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, sub in value.items():
            rows.extend(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    return [(prefix, value)]


def run_one(path: Path, *extra: str) -> dict[str, Any]:
    # With --only, sections come from different runs: each says when it was measured.
    measured_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(path), *extra], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    text = proc.stdout
    result = json.loads(text[text.index("{"):])
    result["_seconds"] = round(time.perf_counter() - start, 1)
    result["_measured_at"] = measured_at
    return result


#: (label, section, dotted key, goal, True when lower is better)
GOALS = [
    # The performance goals (issue 26): ratios against a reference measured in the same run.
    ("default `esper run` wall time / the same with `--no-compare-baseline`, no cached baseline", "cli",
     "baseline_cost.with_over_without", 1.25, True),
    ("the same, the baseline reused from the cache", "cli", "baseline_cost.cached_over_without", None, True),
    ("run machinery / plain loop, all-dormant epochs: median of 3 benchmark runs", "engine",
     "machinery_runs.median", 1.03, True),
    ("the same: highest of the 3 runs", "engine", "machinery_runs.max", 1.06, True),
    ("default run's peak RSS − `import torch` alone − dataset tensors (MB), median of 3", "memory",
     "beyond_torch_mb.median", 60, True),
    ("`esper --help` / importing its dependencies alone", "cli", "esper_help.over_dependencies", 1.3, True),
    ("command to end of first epoch, default run − plain loop (s)", "cli", "default_run.first_epoch_over_plain_s",
     0.5, True),
    # Absolute figures, for reference.
    ("site-packages on disk, installed torch (GB)", "install", "installed.site_packages_gb", None, True),
    ("site-packages on disk, CPU build of torch (GB)", "install", "cpu_build.site_packages_gb", None, True),
    ("`esper --help` (s)", "cli", "esper_help.median_s", None, True),
    ("default `esper run` wall time incl. baseline (s)", "cli", "default_run.wall_s", None, True),
    ("default `esper run`: command to end of first epoch (s)", "cli", "default_run.first_epoch_s", None, True),
    ("the same, plain PyTorch loop of the same work (s)", "cli", "default_run.plain_reference_first_epoch_s",
     None, True),
    ("`import torch` alone, installed torch (s)", "cli", "default_run.import_torch.seconds_median", None, True),
    ("default `esper run`: command to end of first epoch, CPU build of torch (s)", "cli",
     "default_run_cpu_torch.first_epoch_s", 4, True),
    ("the same, plain PyTorch loop, CPU build of torch (s)", "cli",
     "default_run_cpu_torch.plain_reference_first_epoch_s", None, True),
    ("default `esper run` peak resident memory, CPU build of torch (MB)", "cli",
     "default_run_cpu_torch.peak_rss_mb", 600, True),
    ("default `esper run` peak resident memory, installed torch (MB)", "cli", "default_run.peak_rss_mb", None,
     True),
    ("default `esper run` / plain PyTorch loop, peak resident memory, installed torch", "cli",
     "default_run.peak_rss_over_plain", None, True),
    ("`import torch` alone, installed torch: peak resident memory (MB)", "cli",
     "default_run.import_torch.peak_rss_mb_median", None, True),
    ("`import torch` alone, CPU build of torch: peak resident memory (MB)", "cli",
     "default_run_cpu_torch.import_torch.peak_rss_mb_median", None, True),
    ("6,400 train + 6,400 val images, default host, batch 32 (s)", "engine",
     "epoch_6400.batch_32.seconds_median", 1.5, True),
    ("6,400 train + 6,400 val images, default host, batch 128 (s)", "engine",
     "epoch_6400.batch_128.seconds_median", 1.5, True),
    ("the same 6,400 + 6,400 epoch, plain PyTorch loop, batch 32 (s)", "engine",
     "epoch_6400.batch_32.plain_seconds_median", None, True),
    ("dormant slots / plain host", "kasmina", "dormant_vs_plain.median", 1.02, True),
    ("TRAINING + BLENDING seed / static model", "kasmina", "training_blending_vs_static.median", 1.05, True),
    ("counterfactual of a seed at block 1 / validation pass", "kasmina",
     "counterfactual_extra_vs_validation.b1.median", 0.5, True),
    ("counterfactual of a seed after the stem / validation pass", "kasmina",
     "counterfactual_extra_vs_validation.stem.median", 0.5, True),
    ("governor snapshot / training step", "kasmina", "snapshot_vs_step.median", None, True),
    ("CNN data pipeline / pre-made tensors", "cnn", "pipeline.ratio", 1.10, True),
    ("CNN host via segments / nn.Sequential", "cnn", "host.ratio", 1.05, True),
    ("GPT host via segments / plain GPT (slowdown)", "transformer", "slowdown_segmented_over_plain.median",
     1.05, True),
    ("PPO inference + update / environment time (default config)", "ppo", "overhead.ratio", 0.05, True),
    ("gradient health `minimal` overhead", "telemetry", "overhead.minimal.median", 0.02, True),
    ("gradient health `standard` overhead", "telemetry", "overhead.standard.median", 0.10, True),
    ("Crucible: XOR candidates/s, 256 batched, 100 Adam steps, 1 thread", "crucible",
     "batched_candidates_per_s.median", 2000, False),
    ("Crucible: batched / per-model loop (same work)", "crucible", "ratio_batched_over_loop.median", 100, False),
    ("Crucible: random-search candidates/s, 256, xor+temporal+image, 100 steps, 1 thread", "crucible",
     "random_candidates_per_s", None, False),
    ("Crucible: 256 copies of one structure, same workload", "crucible", "same_structure_candidates_per_s",
     None, False),
    ("Crucible: random search / one structure (mixed structures batch nearly as well)", "crucible",
     "random_over_same_structure.median", 0.5, False),
    ("Crucible: random search / 256 copies of a 3×3 convolution", "crucible",
     "random_over_same_structure_conv", None, False),
    ("Crucible: achieved GFLOP/s, random search", "crucible", "random_gflop_per_s", None, False),
    ("Crucible: achieved GFLOP/s, 256 copies of a 3×3 convolution", "crucible",
     "same_structure_conv_gflop_per_s", None, False),
    ("2 threads / 1 thread, default CNN step, idle machine", "threads",
     "idle.best_2_threads_over_best_1_thread", None, True),
    ("2 threads / 1 thread, default CNN step, one other core busy", "threads",
     "busy.best_2_threads_over_best_1_thread", None, True),
]


#: benchmarks whose goal is stated over several runs of the whole script
REPEATS = {"engine": 3}


def machinery_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The machinery ratio over whole runs of ``bench_engine``: each run's median, and their
    median and maximum (the goal holds over runs, not just within one)."""
    medians = [r["machinery_vs_plain"]["median"] for r in runs if "machinery_vs_plain" in r]
    if not medians:
        return {"error": "no run reported machinery_vs_plain"}
    return {"medians": medians, "median": sorted(medians)[len(medians) // 2], "max": max(medians),
            "min": min(medians)}


def verdicts(results: dict[str, dict[str, Any]]) -> list[str]:
    """One PASS/FAIL line per goal that was measured."""
    lines = []
    for label, section, key, goal, lower in GOALS:
        value = _lookup(results, section, key)
        if goal is None or not isinstance(value, int | float):
            continue
        met = value <= goal if lower else value >= goal
        lines.append(f"{'PASS' if met else 'FAIL'}  {label}: {value:.4g} (goal {'≤' if lower else '≥'} {goal})")
    return lines


def _lookup(results: dict[str, Any], section: str, key: str) -> Any:
    value: Any = results.get(section, {})
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else "unknown CPU"


def render(results: dict[str, dict[str, Any]]) -> str:
    import torch

    lines = [
        "# Benchmarks",
        "",
        "Written by `.venv/bin/python benchmarks/run_all.py`; every figure below comes from that "
        "command. Ratios compare against a plain PyTorch reference run in the same process, "
        "interleaved and repeated (median, with min/max where the script reports them). Whole-process "
        "figures (start-up, memory) come from separate processes: peak memory is each process's own "
        "high-water mark, the default run's beside a plain PyTorch loop of the same work "
        "(`benchmarks/plain_reference.py`), and under a CPU build of torch when `.venv-cpu` exists "
        "(`scripts/setup-cpu-env.sh`).",
        "",
        f"Machine: {_cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, {platform.system()}, "
        f"Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} default threads; "
        f"written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
    lines += ["## Against the goals", "", "| figure | measured | goal | met |", "|---|---|---|---|"]
    for label, section, key, goal, lower in GOALS:
        value = _lookup(results, section, key)
        if not isinstance(value, int | float):  # not measured (or a section that failed)
            continue
        met = "" if goal is None else ("yes" if (value <= goal if lower else value >= goal) else "**no**")
        lines.append(f"| {label} | {value:.4g} | {'-' if goal is None else goal} | {met} |")
    lines.append("")
    for name, result in results.items():
        lines += [f"## {name}", "", "| figure | value |", "|---|---|"]
        for key, value in flatten(result):
            if isinstance(value, float):
                value = f"{value:.4g}"
            lines.append(f"| `{key}` | {value} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated benchmark names (e.g. kasmina,cnn)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--cpu-python", type=Path, default=None,
                        help="interpreter with a CPU build of torch for the memory goal "
                             "(default: .venv-cpu/bin/python, made by scripts/setup-cpu-env.sh, if present)")
    args = parser.parse_args()
    if args.cpu_python is not None and not args.cpu_python.exists():
        parser.error(f"--cpu-python {args.cpu_python}: no such interpreter")
    cpu_python = args.cpu_python or (CPU_PYTHON if CPU_PYTHON.exists() else None)
    wanted = set(args.only.split(",")) if args.only else None
    # With --only, refresh those sections and keep the others from the last full run.
    results: dict[str, dict[str, Any]] = (
        json.loads(args.json.read_text()) if wanted and args.json.exists() else {}
    )
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        extra = ("--cpu-python", str(cpu_python)) if name == "cli" and cpu_python else ()
        runs = [run_one(path, *extra) for _ in range(REPEATS.get(name, 1))]
        results[name] = runs[0]
        if name == "engine":
            results[name]["machinery_runs"] = machinery_runs(runs)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    results = dict(sorted(results.items()))
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(render(results) + "\n")
    print(f"wrote {DOC} and {args.json}", file=sys.stderr)
    print("\n".join(verdicts(results)))


if __name__ == "__main__":
    main()
