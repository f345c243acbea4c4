"""One training's evaluations on several sets of held-out episodes, pooled: each row against a
behaviour policy (and against another row) per set and over all the sets' episodes together.

    python benchmarks/pool_held_out.py --training 0=A0.json,B0.json,C0.json --training 1=... \
        --rows beta=3,advantage_weights=binary --against heuristic --out docs/FILE.md

Each ``--training`` names one trained policy's ``iql_sweep.py`` JSON files, one per evaluation
set (``--eval-seed``). The sets are disjoint episodes, so their paired differences concatenate
into one sample per training seed. A training seed's files must hold the same variants; files of
one set must hold the same behaviour episodes across training seeds (compared, not assumed).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

from compare_learned import policies, row
from report import format_t, publish

from esper_core.paired import paired_difference


def training_files(text: str) -> tuple[str, list[Path]]:
    seed, sep, files = text.partition("=")
    if not sep or not files:
        raise argparse.ArgumentTypeError(f"{text!r} is not SEED=FILE,FILE,...")
    return seed, [Path(f) for f in files.split(",")]


def cell(d: dict[str, Any]) -> str:
    return f"{d['mean']:+.2f} ({format_t(d['t'], 2)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training", action="append", required=True, type=training_files,
                        metavar="SEED=FILE,FILE,...")
    parser.add_argument("--rows", required=True,
                        help="comma-separated variants to pool, e.g. beta=3,advantage_weights=binary")
    parser.add_argument("--against", default="heuristic")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    names = args.rows.split(",")
    sets = {len(files) for _, files in args.training}
    if len(sets) != 1:
        sys.exit("error: every --training needs the same number of files (one per evaluation set)")
    loaded = {seed: [policies(f) for f in files] for seed, files in args.training}
    first = next(iter(loaded.values()))
    for seed, files in loaded.items():
        for k, (mine, theirs) in enumerate(zip(files, first, strict=True)):
            if mine[args.against]["returns"] != theirs[args.against]["returns"]:
                sys.exit(f"error: training {seed}'s file {k + 1} holds other {args.against} episodes than the first "
                         "training's: not the same evaluation set")
    paths = dict(args.training)
    header = " | ".join(f"set {k + 1}" for k in range(sets.pop()))
    lines = [f"# Held-out evaluation sets pooled: {', '.join(names)} against {args.against}", "",
             f"Written by `.venv/bin/python benchmarks/pool_held_out.py {shlex.join(sys.argv[1:])}`. Return − "
             f"{args.against} (one-sided paired t) per evaluation set, and over every set's episodes together.", ""]
    data: dict[str, Any] = {}
    pairs = [(name, args.against) for name in names] + ([(names[1], names[0])] if len(names) == 2 else [])
    for a, b in pairs:
        lines += [f"## {a} − {b}", "", f"| training seed | {header} | pooled | episodes |",
                  "|---|" + "---|" * (header.count("|") + 3)]
        pooled_means: list[float] = []
        for seed, files in loaded.items():
            returns = [(row(f, a, p)["returns"], row(f, b, p)["returns"])
                       for f, p in zip(files, paths[seed], strict=True)]
            per_set = [paired_difference(x, y) for x, y in returns]
            pooled = paired_difference([v for x, _ in returns for v in x], [v for _, y in returns for v in y])
            mean = pooled["mean"]
            assert mean is not None  # sixty episodes, never empty
            pooled_means.append(float(mean))
            data.setdefault(f"{a} - {b}", {})[seed] = {"per_set": per_set, "pooled": pooled}
            lines.append(f"| {seed} | " + " | ".join(cell(d) for d in per_set)
                         + f" | **{cell(pooled)}** | {pooled['n']} |")
        at_or_above = sum(1 for m in pooled_means if m >= 0)
        lines += ["", f"Mean over training seeds {statistics.fmean(pooled_means):+.3f}; pooled difference ≥ 0 in "
                      f"{at_or_above} of {len(pooled_means)}.", ""]
    publish(lines, args.out, data)


if __name__ == "__main__":
    main()
