"""Two trained policies paired on the same held-out episodes: the ``ppo`` rows of two
``learned_controllers.py`` JSON files (e.g. the same recipe with two advantage estimators).

    python benchmarks/compare_learned.py A.json B.json [--name-a group] [--name-b gae] [--out FILE.md]

Refuses a pair whose heuristic rows differ: then the files were not evaluated on the same
episodes under the same settings, and a paired difference would mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from report import format_t, publish

from esper_core.paired import paired_difference


def policies(path: Path) -> dict[str, dict[str, Any]]:
    data = json.loads(path.read_text())
    return {p["policy"]: p for p in data["ppo"]["bc"]["policies"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--name-a", default="A")
    parser.add_argument("--name-b", default="B")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    a, b = policies(args.a), policies(args.b)
    if a["heuristic"]["test_accuracies"] != b["heuristic"]["test_accuracies"]:
        sys.exit("error: the two files' heuristic rows differ, so their episodes are not the same; nothing to pair")
    rows = {key: paired_difference(a["ppo"][key], b["ppo"][key]) for key in ("test_accuracies", "returns")}
    lines = [f"# PPO ({args.name_a}) against PPO ({args.name_b}) on the same held-out episodes", "",
             f"Written by `.venv/bin/python benchmarks/compare_learned.py {' '.join(sys.argv[1:])}`. "
             "The heuristic's held-out test accuracies are identical in both files, episode by episode.", "",
             f"| quantity | {args.name_a} − {args.name_b} (sd) | one-sided paired t | episodes |", "|---|---|---|---|"]
    for key, label in (("test_accuracies", "test accuracy (points)"), ("returns", "return")):
        d = rows[key]
        lines.append(f"| {label} | {d['mean']:+.2f} ({d['sd']:.2f}) | {format_t(d['t'], 2)} | {d['n']} |")
    publish(lines, args.out, rows)


if __name__ == "__main__":
    main()
