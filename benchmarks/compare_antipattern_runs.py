"""Paired by training seed: the anti-pattern share of two ``ppo_antipatterns.py`` work directories
over their last ``--window`` rounds, and each one's KL to the cloned policy (``bc_anchor``).

    python benchmarks/compare_antipattern_runs.py A_WORK B_WORK [--seeds 0,1,2,3,4] [--window 5]
        [--out docs/antipatterns_anchor_paired.md]

Each seed's share is its pooled last-window share (``ppo_antipatterns.pooled``), read from
``WORK/seedN/run/summary.json``; the difference A − B is paired over the seeds
(``esper_core.paired``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

from ppo_antipatterns import pooled
from report import format_t, publish

from esper_core.paired import paired_difference


def last_shares(work: Path, seeds: list[int], window: int) -> tuple[list[float], list[float]]:
    """Per seed the last-window share, and every round's KL to the cloned policy (where recorded)."""
    shares, kls = [], []
    for seed in seeds:
        history = json.loads((work / f"seed{seed}" / "run" / "summary.json").read_text())["history"]
        bad, total, _ = pooled(history, range(len(history) - window, len(history)))
        shares.append(bad / total)
        kls += [h["kl_to_cloned"] for h in history if h.get("kl_to_cloned") is not None]
    return shares, kls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pairs", nargs="+", metavar="A_WORK:B_WORK", help="work directories to compare, A − B")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    lines = ["# Anti-pattern share, paired by training seed", "",
             f"Written by `.venv/bin/python benchmarks/compare_antipattern_runs.py {shlex.join(sys.argv[1:])}`: "
             f"the share of sampled germinations that picked an anti-pattern over the last {args.window} rounds, "
             f"seeds {args.seeds}.", "",
             "| A | B | A per seed | B per seed | A − B (sd, t) | A lower in |", "|---|---|---|---|---|---|"]
    kl_lines: dict[Path, str] = {}  # one line per anchored run, however many pairs it is in
    data = []
    for pair in args.pairs:
        a_dir, b_dir = (Path(p) for p in pair.split(":"))
        (a, a_kl), (b, _) = last_shares(a_dir, seeds, args.window), last_shares(b_dir, seeds, args.window)
        d = paired_difference(a, b)
        lower = sum(x < y for x, y in zip(a, b, strict=True))
        lines.append(f"| {a_dir} | {b_dir} | {', '.join(f'{x:.3f}' for x in a)} | {', '.join(f'{x:.3f}' for x in b)} "
                     f"| {d['mean']:+.3f} ({d['sd']:.3f}, {format_t(d['t'], 2)}) | {lower} of {len(seeds)} |")
        data.append({"a": str(a_dir), "b": str(b_dir), "a_shares": a, "b_shares": b, "difference": d})
        if a_kl:
            kl_lines[a_dir] = (f"- {a_dir}: median {statistics.median(a_kl):.3f}, max {max(a_kl):.3f} "
                               f"over {len(a_kl)} rounds")
    if kl_lines:
        lines += ["", "KL(cloned policy ‖ policy) per round, the update's mean (A's runs with `bc_anchor`):", "",
                  *kl_lines.values()]
    publish(lines, args.out, data)


if __name__ == "__main__":
    main()
