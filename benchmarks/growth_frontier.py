"""What a controller could reach: fixed growth plans (blueprint per slot) against the heuristic.

    .venv/bin/python benchmarks/growth_frontier.py --task shapes --seeds 0,1,2,3,4 --jobs 2 \
        --out docs/growth_frontier_shapes_screen.md
    .venv/bin/python benchmarks/growth_frontier.py --task shapes --seeds 5,6,7,8,9,10,11,12,13,14 --jobs 2 \
        --plans "<the best plans of the screen>" --out docs/growth_frontier_shapes.md

The screen tries the default plans on a few seeds; the best are then re-measured on fresh seeds,
so that picking them on the screen's noise does not inflate their gain.

A learned controller on a task can beat the heuristic only by choosing differently: other
blueprints, other slots. Each *plan* here is one such choice made once and for all — which
blueprint to grow in which slot — run by the heuristic's own lifecycle management (it decides
when a germination may happen, advances, fossilizes and culls exactly as by default; only what
it germinates, and where, comes from the plan, each entry tried once). The best plan that adds
no more parameters than the heuristic bounds from below what a controller choosing blueprints
and slots can gain over it; when no plan gains, a learner has nothing to find in that part of
the action space. Each plan is paired with the default heuristic on the same seeds (test
accuracy, added parameters, and the return under the run's reward, which says whether the
reward ranks the plan where its accuracy does). Two tables follow: each plan's mean reward terms
(what its return is made of), and each plan paired against the most accurate one (whether the
reward would lead a learner away from that plan, and at what price in accuracy).

A plan is written ``slot=blueprint+slot=blueprint``, in germination order (``--plans`` takes
them separated by ``;``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from growth_lib import resolve, run_episode, threads
from report import format_t, publish

from esper_core.contracts.decisions import Decision, Op
from esper_core.paired import paired_difference

# The heuristic's own choices on shapes (conv_light in block1 and block2, attention in block3,
# where conv_light no longer fits its parameter limit) come first, as a check of the plan
# mechanism; the others spend at most about as many parameters differently.
DEFAULT_PLANS = (
    "block1=conv_light+block2=conv_light+block3=attention",
    "block1=conv_heavy+block2=conv_light",
    "block1=conv_light+block2=conv_light+block3=norm",
    "block1=conv_light+block2=conv_light",
    "block1=conv_light+block2=depthwise+block3=depthwise",
    "block1=conv_heavy+block2=depthwise+block3=depthwise",
    "block1=depthwise+block2=depthwise+block3=depthwise",
    "block1=conv_light+block2=bottleneck+block3=depthwise",
    "block1=conv_heavy+block2=bottleneck+block3=depthwise",
    "block2=conv_light+block3=bottleneck",
    "block1=conv_heavy+block2=depthwise+block3=attention",
    "block1=conv_light+block2=depthwise+block3=bottleneck",
)


def parse_plan(text: str) -> list[tuple[str, str]]:
    entries = []
    for part in text.split("+"):
        slot, sep, blueprint = part.partition("=")
        if not sep or not slot or not blueprint:
            raise SystemExit(f"plan {text!r}: each entry must be slot=blueprint, got {part!r}")
        entries.append((slot.strip(), blueprint.strip()))
    return entries


def check_plans(plans: list[str], resolved: Any) -> None:
    """Refuse a plan naming a slot or blueprint the task does not have: it would never germinate."""
    slots = tuple(resolved.slots)
    names = {b.name for b in resolved.blueprints}
    for plan in plans:
        for slot, blueprint in parse_plan(plan):
            if slot not in slots:
                raise SystemExit(f"plan {plan!r}: no slot {slot!r} on this task (slots: {', '.join(slots)})")
            if blueprint not in names:
                raise SystemExit(f"plan {plan!r}: blueprint {blueprint!r} is not offered on this task "
                                 f"(offered: {', '.join(sorted(names))})")


class PlannedGrowth:
    """The heuristic, except that each germination it proposes is replaced by the plan's next one.

    When the heuristic would germinate (its timing, embargo and live-seed rules hold), the first
    plan entry whose slot the mask lets germinate now is germinated instead and struck off; when
    no entry is left the policy waits. Every other decision is the heuristic's.
    """

    def __init__(self, inner: Any, plan: list[tuple[str, str]], slot_names: tuple[str, ...]) -> None:
        self.inner = inner
        self.plan = [(slot_names.index(slot), blueprint) for slot, blueprint in plan]
        self.todo: list[tuple[int, str]] = []

    def reset(self, *, episode: int) -> None:
        self.inner.reset(episode=episode)
        self.todo = list(self.plan)

    def decide(self, *, report: Any, mask: Any) -> Decision:
        decision = self.inner.decide(report=report, mask=mask)
        if decision.op is not Op.GERMINATE:
            return decision
        for entry in self.todo:
            slot, name = entry
            keys = [k for k, allowed in zip(mask.blueprint_keys, mask.blueprints, strict=True)
                    if allowed and k.split(":")[-1] == name]
            if keys and mask.slots[Op.GERMINATE.value][slot]:
                self.todo.remove(entry)
                return Decision(op=Op.GERMINATE, slot=slot, blueprint=keys[0], reason=f"plan: {name} in slot {slot}")
        return Decision.wait("plan: nothing left to germinate here")


def episode(job: tuple[str, str | None, int, dict[str, Any]]) -> tuple[str, int, dict[str, Any]]:
    task, plan, seed, run = job
    threads(1)
    resolved = resolve(task=task, policy="heuristic", seed=seed, run=run,
                       policy_options={"max_added_fraction": 100.0} if plan else None)
    slot_names = tuple(resolved.slots)
    wrap = (lambda policy: PlannedGrowth(policy, parse_plan(plan), slot_names)) if plan else None
    result = run_episode(resolved, wrap=wrap)
    keep = ("test_accuracy", "final_val", "added_params", "return", "reward_terms", "lifecycle",
            "final_architecture")
    return plan or "heuristic", seed, {k: result[k] for k in keep}


def penalty(run: dict[str, Any]) -> float:
    """What the anti-pattern terms charged the episode (0 where they are not installed)."""
    return sum(v for k, v in run["reward_terms"].items() if k.startswith("antipattern_"))


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"test": [r["test_accuracy"] for r in runs], "return": [r["return"] for r in runs],
            "penalty": [penalty(r) for r in runs],
            "return_without_penalty": [r["return"] - penalty(r) for r in runs],
            "added_params": [r["added_params"] for r in runs],
            "fossilized": sum(1 for r in runs for e in r["lifecycle"] if e[4] == "FOSSILIZED"),
            "culled": sum(1 for r in runs for e in r["lifecycle"] if e[4] == "CULLED")}


def fmt(d: dict[str, Any], digits: int) -> str:
    return f"{d['mean']:+.{digits}f} ({d['sd']:.{digits}f}, {format_t(d['t'])})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="shapes")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--plans", default=";".join(DEFAULT_PLANS))
    parser.add_argument("--preset", default="shaped", help="reward preset (shaped, sparse, minimal)")
    parser.add_argument("--blueprints", default=None,
                        help="comma-separated blueprints offered (default: the task's); anti-patterns named here "
                             "can be planned, and the heuristic chooses among the same")
    parser.add_argument("--jobs", type=int, default=1, help="episodes run side by side (one thread each)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    plans = [p.strip() for p in args.plans.split(";") if p.strip()]
    run: dict[str, Any] = {"observers": None, "reward_preset": args.preset}
    if args.blueprints:
        run["blueprints"] = args.blueprints.split(",")
    check_plans(plans, resolve(task=args.task, policy="heuristic", seed=seeds[0], run=run))
    jobs = [(args.task, plan, seed, run) for plan in [None, *plans] for seed in seeds]
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        results = pool.map(episode, jobs, chunksize=1)
    wall = time.perf_counter() - start
    by_plan: dict[str, dict[int, dict[str, Any]]] = {}
    for name, seed, result in results:
        by_plan.setdefault(name, {})[seed] = result
    rows = {name: summary([runs[s] for s in seeds]) for name, runs in by_plan.items()}
    base = rows["heuristic"]
    lines = [
        "# What fixed growth plans reach against the heuristic",
        "",
        f"Written by `.venv/bin/python benchmarks/growth_frontier.py {' '.join(sys.argv[1:])}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), task `{args.task}`, seeds {args.seeds}, reward "
        f"preset `{args.preset}` with the installed observers; {wall / 60:.1f} min on this machine ({args.jobs} "
        "episodes side by side, one thread each). Each plan: the heuristic's lifecycle management, germinating "
        "the plan's blueprints in its slots; paired against the default heuristic on the same seeds. Sorted by "
        "test accuracy.",
        "",
        f"heuristic: test {statistics.fmean(base['test']):.2f} %, {statistics.fmean(base['added_params']):.0f} "
        f"parameters added, return {statistics.fmean(base['return']):+.2f}, of which the anti-pattern terms "
        f"{statistics.fmean(base['penalty']):+.2f} (charged in {sum(1 for p in base['penalty'] if p < 0)} of "
        f"{len(seeds)} episodes).",
        "",
        "| plan | test % | − heuristic (sd, t) | params added | − heuristic | return − heuristic (sd, t) "
        "| anti-pattern penalty (episodes) | return without it − heuristic (sd, t) | fossilized / culled |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(rows.items(), key=lambda kv: -statistics.fmean(kv[1]["test"])):
        if name == "heuristic":
            continue
        dt = paired_difference(r["test"], base["test"])
        params = statistics.fmean(r["added_params"])
        hit = sum(1 for p in r["penalty"] if p < 0)
        lines.append(
            f"| {name.replace('+', ', ')} | {statistics.fmean(r['test']):.2f} | {fmt(dt, 2)} | {params:.0f} | "
            f"{params - statistics.fmean(base['added_params']):+.0f} | "
            f"{fmt(paired_difference(r['return'], base['return']), 2)} | "
            f"{statistics.fmean(r['penalty']):+.2f} ({hit}) | "
            f"{fmt(paired_difference(r['return_without_penalty'], base['return_without_penalty']), 2)} | "
            f"{r['fossilized']} / {r['culled']} |")
    lines += reward_tables(rows, by_plan, seeds)
    publish(lines, args.out, {"rows": rows, "runs": by_plan})


def reward_tables(rows: dict[str, dict[str, Any]], by_plan: dict[str, dict[int, dict[str, Any]]],
                  seeds: list[int]) -> list[str]:
    """Where each plan's return comes from (mean reward terms), and each plan paired against the
    most accurate one: whether the reward would lead a learner from one to the other."""
    order = sorted(rows, key=lambda name: -statistics.fmean(rows[name]["test"]))
    # Terms that are 0 in every episode (detectors that never fired; the potential-based shaping,
    # which sums to 0 over an episode) are left out of the table.
    terms = sorted({k for runs in by_plan.values() for r in runs.values()
                    for k, v in r["reward_terms"].items() if abs(v) > 1e-9})
    lines = ["", "Mean reward terms per episode (the return is their sum; terms that are 0 in every episode left out):",
             "",
             "| plan | " + " | ".join(terms) + " | return |", "|---|" + "---|" * (len(terms) + 1)]
    for name in order:
        runs = [by_plan[name][s] for s in seeds]
        means = [statistics.fmean(r["reward_terms"].get(k, 0.0) for r in runs) for k in terms]
        lines.append(f"| {name.replace('+', ', ')} | " + " | ".join(f"{m:+.3f}" for m in means)
                     + f" | {statistics.fmean(rows[name]['return']):+.3f} |")
    top = order[0]
    lines += ["", f"Against the most accurate plan ({top.replace('+', ', ')}), paired on the same seeds: a plan "
              "with less test accuracy but no less return is one the reward does not steer a learner away from.", "",
              "| plan | test % − top (sd, t) | params − top | return − top (sd, t) |", "|---|---|---|---|"]
    for name in order[1:]:
        r = rows[name]
        params = statistics.fmean(r["added_params"]) - statistics.fmean(rows[top]["added_params"])
        lines.append(f"| {name.replace('+', ', ')} | {fmt(paired_difference(r['test'], rows[top]['test']), 2)} | "
                     f"{params:+.0f} | {fmt(paired_difference(r['return'], rows[top]['return']), 2)} |")
    return lines


if __name__ == "__main__":
    main()
