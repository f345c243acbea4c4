"""Which Architect finds the best *novel* blueprints: its reward with and without a novelty penalty.

    .venv/bin/python benchmarks/architect_novelty.py --out docs/architect_novelty.md

The Architect is pre-trained on the catalog's token forms, so it samples near-copies of the
catalog; the fitness's redundancy term (−0.1) barely separates a copy from a new design. Each
variant runs ``esper discover --generator architect`` at the budget of ``discovery_to_growth.py``
on seeds kept apart from that study's (10, 11, 12 by default), so the variant chosen here is
not chosen on the seeds that judge it. Variants: ``novelty_penalty`` (subtracted from the reward
of a valid candidate within the catalog's radius) and a higher sampling ``temperature``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from discovery_to_growth import HERE, discover
from work_folder import claim_work

#: name → (cache label, generator options). Every variant names its temperature: these ran when
#: the default was 1.0, and the winner (1.5) is the default now.
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "temperature=1 (the old default)": ("default", ("temperature=1.0",)),
    "temperature=1, novelty_penalty=0.25": ("novelty_penalty0.25", ("temperature=1.0", "novelty_penalty=0.25")),
    "temperature=1, novelty_penalty=0.5": ("novelty_penalty0.5", ("temperature=1.0", "novelty_penalty=0.5")),
    "temperature=1, novelty_penalty=1": ("novelty_penalty1", ("temperature=1.0", "novelty_penalty=1.0")),
    "temperature=1.5": ("temperature1.5", ("temperature=1.5",)),
}


def _ms(values: Sequence[float], spec: str = ".3f") -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.fmean(values), spec)} ± {format(sd, spec)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="10,11,12")
    parser.add_argument("--budget", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=HERE / "results" / "architect_novelty")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    claim_work(args.work, {"budget": args.budget, "batch_size": args.batch_size})
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(name, seed) for seed in seeds for name in VARIANTS]
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(lambda j: discover("architect", j[1], args, options=VARIANTS[j[0]][1],
                                                label=f"architect-{VARIANTS[j[0]][0]}"), jobs))
    lines = [
        "# The Architect's reward: does counting novelty find better novel blueprints?",
        "",
        f"Written by `.venv/bin/python benchmarks/architect_novelty.py {' '.join(sys.argv[1:])}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `esper discover --generator architect "
        f"--budget {args.budget} --batch-size {args.batch_size} --latency-weight 0`, seeds "
        f"{', '.join(map(str, seeds))} (apart from the seeds of `discovery_to_growth.py`). A search that "
        "found nothing novel counts −1 in `best novel`.",
        "",
        "| variant | best novel | best overall | distinct valid | novel share of hall of fame | best novel per seed |",
        "|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        rs = [r for (n, _), r in zip(jobs, rows, strict=True) if n == name]
        novel = [r["best_novel_fitness"] if r["best_novel_fitness"] is not None else -1.0 for r in rs]
        share = [sum(e["novel"] for e in r["hall_of_fame"]) / max(1, len(r["hall_of_fame"])) for r in rs]
        lines.append(f"| {name} | {_ms(novel)} | {_ms([r['best_fitness'] for r in rs])} | "
                     f"{_ms([r['distinct_valid'] for r in rs], '.1f')} | {_ms(share, '.2f')} | "
                     + ", ".join(f"{v:.3f}" for v in novel) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
