"""How much margin the slow-lane IQL learning test has: its recipe (``tests/test_iql_learning.py``)
run for several run seeds and both action-mask settings, with the test's two statistics at 6 and
at 12 held-out episodes.

    .venv/bin/python benchmarks/iql_learning_test_margin.py --seeds 0,1,2 --masks on,off,on-stage-data \\
        --work /tmp/iql_margin --out docs/iql_learning_test_margin.md

For each (mask, seed): ``esper collect`` 16 heuristic and 16 random episodes on ``micro`` (the
test's reward and sizes, ``[kasmina] mask_by_gates`` on or off), IQL for 1,500 steps, then IQL,
heuristic and random on the same 12 held-out episodes (``on-stage-data``: no recording; IQL
trains on what ``off`` recorded for that seed and acts under the gated mask, which separates
the data's masks from the mask IQL acts under). The statistics are the test's: the
one-sided paired t of IQL − random, and the fraction of the random → heuristic gap in mean return
that IQL closes. ``--work`` keeps each finished (mask, seed) (its ``evaluation.json``) and reuses
it; the markdown written to ``--out`` is the output.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from report import format_t, publish

from esper_core.paired import paired_difference

# The recipe and its statistics are the test's own, imported so that the margin measured is its.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_iql_learning import (
    GAP_CLOSED,
    HELD_OUT_EPISODES,
    T_THRESHOLD,
    recipe_statistics,
    run_recipe,
)

#: ``on``: recorded, trained and evaluated with the gated mask; ``off``: by stage;
#: ``on-stage-data``: trained on the episodes ``off`` recorded, evaluated with the gated mask.
MASKS = ("on", "off", "on-stage-data")


def cached_recipe(work: Path, *, seed: int, mask_by_gates: bool, data: Path | None = None) -> dict[str, Any]:
    """The test's recipe in ``work`` (reused when ``work`` holds its result); with ``data``, IQL
    trains on the episodes recorded there (another setting's ``work``) instead of recording its own."""
    done = work / "evaluation.json"
    if done.exists():
        return json.loads(done.read_text())
    evaluation = run_recipe(work, seed=seed, kasmina={"mask_by_gates": mask_by_gates}, data=data)
    done.write_text(json.dumps(evaluation, default=str))
    return evaluation


def statistics_at(evaluation: dict[str, Any], n: int) -> tuple[float, dict[str, float], float]:
    """The test's t and mean returns over the first ``n`` episodes, with the share of the
    random → heuristic gap IQL closes."""
    t, means = recipe_statistics(evaluation, n)
    return t, means, (means["iql"] - means["random"]) / (means["heuristic"] - means["random"])


def _listed(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--masks", default="on,off", help="comma-separated: on, off, on-stage-data (needs off's work)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    lines = ["# The IQL learning test's margin", "",
             f"Written by `.venv/bin/python benchmarks/iql_learning_test_margin.py {shlex.join(sys.argv[1:])}` "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): the recipe of "
             "`tests/test_iql_learning.py` (`micro`, `action_cost` 2.0, 16 heuristic + 16 random episodes, "
             f"IQL 1,500 steps) per run seed and action-mask setting, on {HELD_OUT_EPISODES} held-out episodes. "
             "t: one-sided paired t of IQL − random in return; gap: the share of the random → heuristic "
             f"gap in mean return that IQL closes. The test asserts t > {T_THRESHOLD} and gap ≥ {GAP_CLOSED} over "
             f"{HELD_OUT_EPISODES} episodes (before: t > 3.4 over 6). mask_by_gates `on-stage-data`: IQL trained "
             "on the episodes recorded by stage (`off`) and evaluated with the gated mask.", "",
             "| mask_by_gates | run seed | IQL | heuristic | random | t (6 episodes) | gap (6) | t (12) | gap (12) "
             "| IQL returns | heuristic returns |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    seeds = [int(s) for s in args.seeds.split(",")]
    iql_mean: dict[str, list[float]] = {}
    heuristic_mean: dict[str, list[float]] = {}
    data: dict[str, Any] = {"runs": [], "paired": {}}
    for mask in args.masks.split(","):
        if mask not in MASKS:
            raise SystemExit(f"--masks: {mask!r} is none of {', '.join(MASKS)}")
        for seed in seeds:
            recorded = args.work / f"off-seed{seed}" if mask == "on-stage-data" else None
            evaluation = cached_recipe(args.work / f"{mask}-seed{seed}", seed=seed, mask_by_gates=mask != "off",
                                       data=recorded)
            t6, _, gap6 = statistics_at(evaluation, 6)
            t12, means, gap12 = statistics_at(evaluation, HELD_OUT_EPISODES)
            iql_mean.setdefault(mask, []).append(means["iql"] - means["heuristic"])
            heuristic_mean.setdefault(mask, []).append(means["heuristic"])
            data["runs"].append({"mask": mask, "seed": seed, "means": means, "t6": t6, "gap6": gap6,
                                 "t12": t12, "gap12": gap12})
            rows = {p["policy"]: p["returns"] for p in evaluation["policies"]}
            lines.append(f"| {mask} | {seed} | {means['iql']:.2f} | {means['heuristic']:.2f} | {means['random']:.2f} "
                         f"| {t6:.2f} | {gap6:.2f} | {t12:.2f} | {gap12:.2f} | {_listed(rows['iql'])} "
                         f"| {_listed(rows['heuristic'])} |")
    for mask, gaps in iql_mean.items():
        lines += ["", f"IQL − heuristic in mean return, mask {mask}: {', '.join(f'{g:+.2f}' for g in gaps)} "
                      f"(≥ 0 in {sum(g >= -1e-9 for g in gaps)} of {len(gaps)} seeds)."]
    for a in ("on", "on-stage-data"):
        if a not in iql_mean or "off" not in iql_mean:
            continue
        d = paired_difference(iql_mean[a], iql_mean["off"])
        data["paired"][a] = d
        same = "the same" if heuristic_mean[a] == heuristic_mean["off"] else "not the same"
        lines += ["", f"Paired by run seed, IQL − heuristic, {a} less off: {d['mean']:+.2f} "
                      f"(sd {d['sd']:.2f}, t {format_t(d['t'], 2)}, {len(seeds)} seeds). "
                      f"The heuristic's mean return is {same} under both in every seed."]
    lines += ["", f"Wall time {(time.perf_counter() - started) / 60:.1f} min (finished work reused from `--work`)."]
    publish(lines, args.out, data)


if __name__ == "__main__":
    main()
