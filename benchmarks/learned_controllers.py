"""Learned controllers against the behaviour policies on held-out episodes: PPO (from scratch,
or cloned from the heuristic and then improved) and IQL (from a mixed heuristic + random dataset).

    .venv/bin/python benchmarks/learned_controllers.py --work /tmp/learned --out docs/learned_shapes.md
    .venv/bin/python benchmarks/learned_controllers.py --task micro --ppo bc,scratch --collect 12 \
        --rounds 20 --episodes 10 --work /tmp/learned_micro --out docs/learned_micro.md

1. ``esper collect`` records ``--collect`` heuristic and ``--collect`` random episodes (training
   seeds), split over ``--jobs`` processes with distinct base seeds.
2. For each ``--ppo`` variant, ``esper run --policy ppo`` trains ``--rounds`` rounds ×
   ``--envs`` worker environments: ``bc`` first clones the heuristic episodes
   (``--bc-dataset``), ``scratch`` starts from PPO's initialisation. Alongside, ``esper run
   --policy iql --dataset <heuristic + random data>`` trains IQL for ``--iql-steps`` steps.
3. ``esper evaluate`` runs each PPO against heuristic and noop, and IQL against heuristic and random,
   on ``--episodes`` held-out episodes per policy (odd seeds no training saw), split over
   ``--jobs`` processes with distinct evaluation seeds; the halves are pooled before the paired
   statistics (``esper_core.paired``).

``--reward-preset`` and ``--param-budget`` go into one run-settings file that every step reads
(``esper evaluate`` takes them from the checkpoint), so the behaviour policies are evaluated
under the same reward and budget as the learner.

Everything goes through the CLI a user runs. ``--work`` keeps each finished step, so an
interrupted study resumes where it stopped, and records the settings that made them: another
invocation on the same folder with other settings is refused. The markdown written to ``--out``
is the output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from report import format_t, publish
from work_folder import claim_work

from esper_core.config import dump_toml
from esper_core.paired import paired_difference
from esper_core.telemetry.jsonl import read_events

ESPER = [sys.executable, "-c", "from esper_core.cli.main import main; main()"]


def esper(*args: str) -> str:
    proc = subprocess.run([*ESPER, "--log-level", "warning", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"esper {' '.join(args[:3])} failed: {proc.stderr.strip().splitlines()[-1]}")
    return proc.stdout


def parallel(jobs: Sequence[tuple[str, ...]], width: int) -> list[str]:
    with ThreadPoolExecutor(max_workers=width) as pool:
        return list(pool.map(lambda a: esper(*a), jobs))


def timed(label: str, timings: dict[str, float], fn: Any, *args: Any) -> Any:
    start = time.perf_counter()
    out = fn(*args)
    timings[label] = timings.get(label, 0.0) + time.perf_counter() - start
    return out


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def collect(work: Path, policy: str, episodes: int, jobs: int, task: str, config: tuple[str, ...]) -> list[Path]:
    dirs, todo = [], []
    for j, n in enumerate(split(episodes, jobs)):
        out = work / f"{policy}-{j}"
        dirs.append(out)
        if not (out / "done").exists():
            todo.append(("collect", "--policy", policy, "--episodes", str(n), "--out", str(out), "--task", task,
                         "--seed", str(1000 * (j + 1)), *config))
    parallel(todo, jobs)
    for d in dirs:
        (d / "done").touch()
    return dirs


def evaluate(work: Path, name: str, checkpoint: Path, against: str, episodes: int, jobs: int,
             seed: int = 7000, options: Sequence[str] = ()) -> dict[str, Any]:
    """``esper evaluate`` split over ``jobs`` evaluation seeds (``seed``, ``seed + 1``, …), pooled
    episode by episode; ``options`` are the trained policy's ``KEY=VALUE`` options as it acts."""
    cached = work / f"eval-{name}.json"
    # What decides the episodes and who plays them: a kept evaluation is reused only under the same.
    made_by = {"checkpoint": str(checkpoint), "against": against, "episodes": episodes, "jobs": jobs, "seed": seed,
               "options": list(options)}
    if cached.exists():
        kept = json.loads(cached.read_text())
        if kept.get("made_by") != made_by:
            raise SystemExit(f"{cached} was made by another evaluation ({kept.get('made_by')}, not {made_by}): "
                             "give the same settings, or another work folder")
        return kept
    halves = parallel([("evaluate", "--policy-checkpoint", str(checkpoint), "--episodes", str(n), "--against",
                        against, "--seed", str(seed + j), "--json", *(f"--policy-option={o}" for o in options))
                       for j, n in enumerate(split(episodes, jobs))], jobs)
    parts = [json.loads(h) for h in halves]
    rows = []
    for i, first in enumerate(parts[0]["policies"]):
        row: dict[str, Any] = {"policy": first["policy"]}
        for key in ("test_accuracies", "final_accuracies", "returns"):
            row[key] = [v for p in parts for v in p["policies"][i][key]]
        n = [p["policies"][i]["episodes"] for p in parts]
        added = [p["policies"][i]["params_added_mean"] for p in parts]
        row["params_added_mean"] = sum(a * k for a, k in zip(added, n, strict=True)) / sum(n)
        for key in ("fossilized", "culled"):
            row[key] = sum(p["policies"][i][key] for p in parts)
        per_bp: dict[str, dict[str, int]] = {}
        for p in parts:
            for bp, outcomes in p["policies"][i]["per_blueprint"].items():
                for outcome, count in outcomes.items():
                    per_bp.setdefault(bp, {}).setdefault(outcome, 0)
                    per_bp[bp][outcome] += count
        row["per_blueprint"] = per_bp
        rows.append(row)
    result = {"policies": rows, "held_out_seeds": [s for p in parts for s in p["held_out_seeds"]],
              "paired_test_accuracy": {r["policy"]: paired_difference(rows[0]["test_accuracies"], r["test_accuracies"])
                                       for r in rows[1:]},
              "paired_return": {r["policy"]: paired_difference(rows[0]["returns"], r["returns"]) for r in rows[1:]},
              "made_by": made_by}
    cached.write_text(json.dumps(result, indent=1))
    return result


def mean_sd(values: Sequence[float]) -> str:
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def table(result: dict[str, Any]) -> list[str]:
    lines = ["| policy | test acc % | final val % | params added (mean) | return | fossilized / culled "
             "| per blueprint (F/C) |",
             "|---|---|---|---|---|---|---|"]
    for r in result["policies"]:
        per_bp = ", ".join(f"{bp} {c.get('fossilized', 0)}/{c.get('culled', 0)}"
                           for bp, c in sorted(r["per_blueprint"].items()) if bp) or "-"
        lines.append(f"| {r['policy']} | {mean_sd(r['test_accuracies'])} | {mean_sd(r['final_accuracies'])} | "
                     f"{r['params_added_mean']:.0f} | {mean_sd(r['returns'])} | {r['fossilized']} / {r['culled']} | "
                     f"{per_bp} |")
    return lines


def paired_lines(result: dict[str, Any], key: str, unit: str) -> list[str]:
    first = result["policies"][0]["policy"]
    out = []
    for name, d in result[key].items():
        out.append(f"- {first} − {name}: {d['mean']:+.2f} ± {d['sd']:.2f} {unit} (t {format_t(d['t'], 2)}, "
                   f"{d['n']} episodes)")
    return out


def shown_arguments(argv: list[str]) -> list[str]:
    """The command line without ``--note`` (its text is printed under the title)."""
    shown, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--note":
            skip = True
        elif not arg.startswith("--note="):
            shown.append(arg)
    return shown


def germinations_by_slot(events: list[dict[str, Any]], envs: int, rounds: int, window: int = 5) -> list[str]:
    """A table of the training run's germinations per slot and blueprint, over its first and last
    ``window`` rounds (the decisions applied, from its events)."""
    early: dict[str, dict[str, int]] = {}
    late: dict[str, dict[str, int]] = {}
    for e in events:
        if e.get("kind") != "decision" or e.get("op") != "GERMINATE" or not e.get("applied"):
            continue
        r = e["episode"] // envs
        for counts, inside in ((early, r < window), (late, r >= rounds - window)):
            if inside:
                in_slot = counts.setdefault(e["slot"], {})
                in_slot[e["blueprint"]] = in_slot.get(e["blueprint"], 0) + 1
    lines_out = [f"| slot | germinations, first {window} rounds | germinations, last {window} rounds |",
                 "|---|---|---|"]
    for slot in sorted(set(early) | set(late)):
        cells = [", ".join(f"{bp.split(':')[-1]} {n}" for bp, n in sorted(c.get(slot, {}).items(), key=lambda x: -x[1]))
                 or "-" for c in (early, late)]
        lines_out.append(f"| {slot} | {cells[0]} | {cells[1]} |")
    return lines_out


def training_returns(events: list[dict[str, Any]], envs: int) -> tuple[dict[int, float], dict[str, list[float]]]:
    """Each finished training episode's return, and each reward term's per-episode sum (from the
    run's events; the last round counts only if it finished)."""
    totals: dict[int, float] = {}
    terms: dict[int, dict[str, float]] = {}
    for e in events:
        if e.get("kind") != "reward":
            continue
        totals[e["episode"]] = totals.get(e["episode"], 0.0) + e["total"]
        episode = terms.setdefault(e["episode"], {})
        for term, value in e["terms"].items():
            episode[term] = episode.get(term, 0.0) + value
    complete = {r for r in {ep // envs for ep in totals} if all(r * envs + i in totals for i in range(envs))}
    kept = sorted(ep for ep in totals if ep // envs in complete)
    names = sorted({t for ep in kept for t in terms[ep]})
    return {ep: totals[ep] for ep in kept}, {t: [terms[ep].get(t, 0.0) for ep in kept] for t in names}


def spread_lines(run: Path, events: list[dict[str, Any]], envs: int) -> list[str]:
    """Where the spread of the training returns comes from: the sd within a round, within the
    groups that share an episode seed (``advantage = "group"`` only), and each reward term's."""
    totals, terms = training_returns(events, envs)
    if not totals:
        return []
    policy = tomllib.loads((run / "config.toml").read_text()).get("policy", {})
    rounds: dict[int, list[float]] = {}
    for ep, value in totals.items():
        rounds.setdefault(ep // envs, []).append(value)
    # sample variances (n − 1): a population variance over 4 episodes runs lower than over 8 by
    # itself, which would read as variance the shared seed explains
    within_round = statistics.fmean(statistics.variance(v) for v in rounds.values()) ** 0.5
    line = (f"Spread of the {len(totals)} training episodes' returns: sd {within_round:.3f} within a round (the "
            "same policy)")
    if policy.get("advantage") == "group":
        size = int(policy.get("group_size", 4))
        within_group = statistics.fmean(statistics.variance(v[g:g + size]) for v in rounds.values()
                                        for g in range(0, len(v), size)) ** 0.5
        line += (f", {within_group:.3f} within a group of {size} sharing an episode seed: the seed accounts for "
                 f"{1 - within_group ** 2 / within_round ** 2:.0%} of the variance, the sampled actions for the rest")
    rows = ["| reward term | mean per episode | sd | episodes where it is not 0 | most negative |",
            "|---|---|---|---|---|"]
    for term, values in sorted(terms.items(), key=lambda kv: -statistics.pstdev(kv[1])):
        if any(abs(v) > 1e-9 for v in values):
            rows.append(f"| {term} | {statistics.fmean(values):+.3f} | {statistics.pstdev(values):.3f} | "
                        f"{sum(abs(v) > 1e-9 for v in values)} / {len(values)} | {min(values):+.2f} |")
    return [line + ".", "", *rows, ""]


def ppo_section(name: str, work: Path, evaluation: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], bool]:
    summary = json.loads((work / f"ppo-{name}" / "summary.json").read_text())
    events = list(read_events(work / f"ppo-{name}" / "events.jsonl"))
    bc = summary.get("bc") or {}
    ppo_row, heuristic_row = evaluation["policies"][0], evaluation["policies"][1]
    d = evaluation["paired_test_accuracy"]["heuristic"]
    params_ok = ppo_row["params_added_mean"] <= heuristic_row["params_added_mean"]
    goal = d["t"] is not None and d["mean"] >= 1.0 and d["t"] >= 2.5 and d["n"] >= 20 and params_ok
    if name == "bc":
        how = (f"{args.collect} heuristic episodes recorded with `esper collect`; `esper run --policy ppo "
               "--bc-dataset …` cloned them (held-out action agreement "
               + (f"{bc['held_out_agreement_before']:.2f} → {bc['held_out_agreement']:.2f}, {bc.get('episodes')} "
                  f"episodes cloned, {bc.get('held_out_episodes')} held out" if "held_out_agreement" in bc
                  else "not reported") + "), then trained")
    else:
        how = "`esper run --policy ppo` from PPO's own initialisation, trained"
    lines = [
        f"## PPO ({'behaviour cloning of the heuristic, then PPO' if name == 'bc' else 'from scratch'})",
        "",
        f"{how} {args.rounds} rounds × {args.envs} worker environments "
        f"({', '.join(args.policy_option) or 'PPO defaults'}).",
        "",
        "PPO rounds (mean return / mean final validation accuracy %): "
        + ", ".join(f"{h['mean_return']:+.2f} / {h['mean_final_accuracy']:.2f}" for h in summary.get("history", [])),
        "",
        "What PPO germinated while training (sampled actions, every environment):",
        "",
        *germinations_by_slot(events, args.envs, len(summary.get("history", []))),
        "",
        *spread_lines(work / f"ppo-{name}", events, args.envs),
        f"Held-out evaluation, {args.episodes} episodes per policy (the same episodes for every policy):",
        "",
        *table(evaluation),
        "",
        "Paired differences over the same episodes:",
        "",
        *paired_lines(evaluation, "paired_test_accuracy", "test-accuracy points"),
        *paired_lines(evaluation, "paired_return", "return"),
        "",
        f"Goal (PPO ≥ heuristic + 1 point test accuracy, one-sided paired t ≥ 2.5 over ≥ 20 episodes, no more "
        f"added parameters): **{'met' if goal else 'not met'}** (PPO adds {ppo_row['params_added_mean']:.0f} "
        f"parameters per episode, the heuristic {heuristic_row['params_added_mean']:.0f}).",
        "",
    ]
    return lines, goal


def iql_section(iql_dir: Path, iql_eval: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], bool]:
    iql_summary = json.loads((iql_dir / "summary.json").read_text())
    iql_rows = {r["policy"]: r for r in iql_eval["policies"]}
    better = max(("heuristic", "random"), key=lambda p: statistics.fmean(iql_rows[p]["returns"]))
    goal = statistics.fmean(iql_rows["iql"]["returns"]) >= statistics.fmean(iql_rows[better]["returns"])
    return [
        "## IQL from a mixed heuristic + random dataset",
        "",
        f"{args.collect} heuristic + {args.collect} random episodes; `esper run --policy iql --dataset …` for "
        f"{args.iql_steps} steps (final losses: "
        + json.dumps({k: round(v, 4) for k, v in (iql_summary.get("history") or [{}])[-1].items()
                      if isinstance(v, float)}) + ").",
        "",
        *table(iql_eval),
        "",
        *paired_lines(iql_eval, "paired_return", "return"),
        *paired_lines(iql_eval, "paired_test_accuracy", "test-accuracy points"),
        "",
        f"Goal (IQL's mean return ≥ the better behaviour policy's, here {better}): "
        f"**{'met' if goal else 'not met'}**.",
    ], goal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="shapes")
    parser.add_argument("--ppo", default="bc", help="comma-separated PPO variants: bc, scratch")
    parser.add_argument("--collect", type=int, default=24, help="episodes recorded per behaviour policy")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--envs", type=int, default=4)
    parser.add_argument("--iql-steps", type=int, default=20000, help="IQL gradient steps (the product default)")
    parser.add_argument("--no-iql", action="store_true", help="PPO only: no random episodes, no IQL")
    parser.add_argument("--episodes", type=int, default=20, help="held-out evaluation episodes per policy")
    parser.add_argument("--jobs", type=int, default=2, help="processes run side by side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reward-preset", default=None, help="the runs' reward preset (default: the default, shaped)")
    parser.add_argument("--param-budget", type=int, default=None,
                        help="most seed parameters an episode may hold, for every run and every policy evaluated")
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a PPO option for the training runs; repeatable")
    parser.add_argument("--work", type=Path, required=True, help="keeps every finished step (resumable)")
    parser.add_argument("--note", default=None, help="a paragraph put under the title (e.g. what code it ran)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    variants = args.ppo.split(",")
    unknown = set(variants) - {"bc", "scratch"}
    if unknown:
        parser.error(f"unknown --ppo variant(s): {', '.join(sorted(unknown))} (known: bc, scratch)")
    claim_work(args.work, {k: getattr(args, k) for k in (
        "task", "collect", "rounds", "envs", "iql_steps", "seed", "reward_preset", "param_budget",
        "policy_option")})
    timings_file = args.work / "timings.json"
    timings: dict[str, float] = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    if args.param_budget is not None and args.param_budget < 0:
        parser.error(f"--param-budget must be ≥ 0, got {args.param_budget}")
    # `esper collect` takes run settings from a config file, as `esper run` can; `esper evaluate`
    # takes them from the checkpoint, so every policy is evaluated under them.
    settings = {"reward_preset": args.reward_preset or None, "param_budget": args.param_budget}
    config: tuple[str, ...] = ()
    if any(v is not None for v in settings.values()):
        (args.work / "run.toml").write_text(dump_toml({"run": settings}))  # drops the unset ones
        config = ("--config", str(args.work / "run.toml"))
    common = ("--task", args.task, "--seed", str(args.seed), *config)

    heuristic = timed("collect heuristic", timings, collect, args.work, "heuristic", args.collect, args.jobs, args.task,
                      config)
    random = [] if args.no_iql else timed("collect random", timings, collect, args.work, "random", args.collect,
                                          args.jobs, args.task, config)
    timings_file.write_text(json.dumps(timings))

    iql_dir = args.work / "iql"
    runs = []
    for name in variants:
        out = args.work / f"ppo-{name}"
        if not (out / "summary.json").exists():
            clone = ("--bc-dataset", ",".join(map(str, heuristic))) if name == "bc" else ()
            runs.append(("run", "--policy", "ppo", *clone, "--rounds", str(args.rounds), "--envs", str(args.envs),
                         "--workers", "--no-compare-baseline", "--out", str(out),
                         *(f"--policy-option={o}" for o in args.policy_option), *common))
    if not args.no_iql and not (iql_dir / "summary.json").exists():
        runs.append(("run", "--policy", "iql", "--dataset", ",".join(map(str, heuristic + random)),
                     "--policy-option", f"steps={args.iql_steps}", "--no-compare-baseline", "--out", str(iql_dir),
                     *common))
    timed("train", timings, parallel, runs, args.jobs)
    timings_file.write_text(json.dumps(timings))

    evaluations = {}
    for name in variants:
        evaluations[name] = timed(f"evaluate ppo-{name}", timings, evaluate, args.work, f"ppo-{name}",
                                  args.work / f"ppo-{name}" / "policy.pt", "heuristic,noop", args.episodes, args.jobs)
        timings_file.write_text(json.dumps(timings))
    iql_eval = None if args.no_iql else timed("evaluate iql", timings, evaluate, args.work, "iql",
                                              iql_dir / "policy.pt", "heuristic,random", args.episodes, args.jobs)
    timings_file.write_text(json.dumps(timings))

    lines = [
        f"# Learned controllers on `{args.task}`",
        "",
        f"Written by `.venv/bin/python benchmarks/learned_controllers.py {' '.join(shown_arguments(sys.argv[1:]))}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), task `{args.task}`, reward: "
        + (f"preset `{args.reward_preset}`" if args.reward_preset else
           "the default (`shaped`, with the installed anti-pattern terms)")
        + (f", a budget of {args.param_budget} seed parameters per episode for every policy"
           if args.param_budget is not None else "")
        + f", on this machine (2 CPU cores, {args.jobs} processes side by side). Wall time per step: "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items()) + ".",
        "",
        *([args.note, ""] if args.note else []),
    ]
    goals = {}
    for name in variants:
        section, goals[name] = ppo_section(name, args.work, evaluations[name], args)
        lines += section
    goal4 = None
    if iql_eval is not None:
        section, goal4 = iql_section(iql_dir, iql_eval, args)
        lines += section
    publish(lines, args.out, {
        "ppo": evaluations, "iql": iql_eval, "goals": {"ppo": goals, "iql": goal4}, "timings": timings,
        "ppo_history": {n: json.loads((args.work / f"ppo-{n}" / "summary.json").read_text()).get("history")
                        for n in variants}})

if __name__ == "__main__":
    main()
