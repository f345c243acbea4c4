"""Run every benchmark in this folder and write ``docs/benchmarks.md`` (and a JSON copy).

    .venv/bin/python benchmarks/run_all.py [--only kasmina,cnn] [--json benchmarks/results/latest.json]

Each ``bench_*.py`` prints one JSON object on stdout; this script runs them one after another
(never in parallel: they time things) and renders every figure into a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, sub in value.items():
            rows.extend(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    return [(prefix, value)]


def run_one(path: Path) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    text = proc.stdout
    result = json.loads(text[text.index("{"):])
    result["_seconds"] = round(time.perf_counter() - start, 1)
    return result


def render(results: dict[str, dict[str, Any]]) -> str:
    import torch

    lines = [
        "# Benchmarks",
        "",
        "Written by `.venv/bin/python benchmarks/run_all.py`; every figure below comes from that "
        "command. Ratios compare against a plain PyTorch reference run in the same process, "
        "interleaved and repeated (median, with min/max where the script reports them).",
        "",
        f"Machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} default threads; "
        f"written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
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
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    results: dict[str, dict[str, Any]] = {}
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        results[name] = run_one(path)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(render(results) + "\n")
    print(f"wrote {DOC} and {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
