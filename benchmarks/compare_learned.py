"""Two trained policies paired on the same held-out episodes: the ``ppo`` rows of two
``learned_controllers.py`` JSON files (e.g. the same recipe with two advantage estimators), or two
rows of ``iql_sweep.py`` JSON files (``--row-a`` / ``--row-b`` name the variant, e.g. ``beta=3``).

    python benchmarks/compare_learned.py A.json B.json [--name-a group] [--name-b gae] [--out FILE.md]
    python benchmarks/compare_learned.py v2.json v1.json --row-a beta=3 --row-b beta=3 --name-a v2 --name-b v1

Lists the episodes where the two returns differ. Refuses a pair whose heuristic rows differ: then
the files were not evaluated on the same episodes under the same settings, and a paired
difference would mean nothing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from report import format_t, publish

from esper_core.paired import paired_difference


def policies(path: Path) -> dict[str, dict[str, Any]]:
    """The file's rows by name: ``ppo`` and the behaviours of a ``learned_controllers.py`` file, or
    every variant and behaviour of an ``iql_sweep.py`` file."""
    data = json.loads(path.read_text())
    if "variants" in data:
        return {**{p["policy"]: p for p in data["behaviours"]}, **data["variants"]}
    return {p["policy"]: p for p in data["ppo"]["bc"]["policies"]}


def row(rows: dict[str, dict[str, Any]], name: str, path: Path) -> dict[str, Any]:
    if name not in rows:
        sys.exit(f"error: {path} has no row {name!r}; it has {', '.join(sorted(rows))}")
    return rows[name]


def kind(name: str) -> str:
    """What a row is: PPO, a behaviour policy, or (any other row of an iql_sweep file) an IQL variant."""
    return "PPO" if name == "ppo" else name if name in ("heuristic", "random", "noop") else "IQL"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--name-a", default="A")
    parser.add_argument("--name-b", default="B")
    parser.add_argument("--row-a", default="ppo", help="the row of A to compare (an iql_sweep variant, e.g. beta=3)")
    parser.add_argument("--row-b", default="ppo", help="the row of B to compare")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    a, b = policies(args.a), policies(args.b)
    if a["heuristic"]["test_accuracies"] != b["heuristic"]["test_accuracies"]:
        sys.exit("error: the two files' heuristic rows differ, so their episodes are not the same; nothing to pair")
    row_a, row_b = row(a, args.row_a, args.a), row(b, args.row_b, args.b)
    rows = {key: paired_difference(row_a[key], row_b[key]) for key in ("test_accuracies", "returns")}
    lines = [f"# {kind(args.row_a)} ({args.name_a}) against {kind(args.row_b)} ({args.name_b}) on the same held-out "
             "episodes", "",
             f"Written by `.venv/bin/python benchmarks/compare_learned.py {shlex.join(sys.argv[1:])}`. "
             "The heuristic's held-out test accuracies are identical in both files, episode by episode.", "",
             f"| quantity | {args.name_a} − {args.name_b} (sd) | one-sided paired t | episodes |", "|---|---|---|---|"]
    for key, label in (("test_accuracies", "test accuracy (points)"), ("returns", "return")):
        d = rows[key]
        lines.append(f"| {label} | {d['mean']:+.2f} ({d['sd']:.2f}) | {format_t(d['t'], 2)} | {d['n']} |")
    lines += differing_episodes(row_a["returns"], row_b["returns"], a["heuristic"]["returns"], args.name_a, args.name_b)
    publish(lines, args.out, rows)


def differing_episodes(a: list[float], b: list[float], heuristic: list[float], name_a: str, name_b: str) -> list[str]:
    """The held-out episodes (numbered from 0 in the files' order) where the two returns differ,
    each against the heuristic's return there: a mean difference is usually a few such episodes.
    "Differ" is inequality, as in iql_sweep.py's exact-return count: the same actions on a
    deterministic episode give bit-identical returns."""
    rows = [(i, x, y, h) for i, (x, y, h) in enumerate(zip(a, b, heuristic, strict=True)) if x != y]
    if not rows:
        return ["", "The two returned the same in every episode."]
    return ["", f"Episodes where the returns differ ({len(rows)} of {len(a)}):", "",
            f"| episode | {name_a} − heuristic | {name_b} − heuristic | {name_a} − {name_b} |", "|---|---|---|---|",
            *(f"| {i} | {x - h:+.2f} | {y - h:+.2f} | {x - y:+.2f} |" for i, x, y, h in rows)]


if __name__ == "__main__":
    main()
