"""Does PPO learn to avoid the anti-pattern blueprints? Train it with the ten anti-patterns in
the action space and compare the share of germinations that pick one early and late.

    python benchmarks/ppo_antipatterns.py [--seeds 0,1,2] [--rounds 30] [--envs 2] [--task micro]
        [--reward-preset sparse] [--param-budget N] [--bc-collect 12 --policy-option bc_heads=op,slot]
        [--evaluate 20 [--sampled]] [--jobs 2] [--policy-option workers=true] [--work DIR]
        [--good conv_light,conv_small,...]
        [--out docs/antipatterns_learning.md]

On ``shapes`` pass ``--policy-option workers=true``: without it a run's environments take their
epochs one after another in one process (8 environments: about 40 s a step here, sharing the
cores with another run, against about 6 s in worker processes).

For every seed: ``esper run --policy ppo`` with good CNN blueprints plus blueprints 24–33;
the trainer's per-round history has ``antipattern_share`` (anti-pattern germinations /
all germinations in that round) and ``antipattern_chance`` (what a uniform choice among the
blueprints the action mask offered at the same germinations would have picked: 2/3 without a
budget, less where ``--param-budget`` masks anti-patterns that do not fit). Reported: the pooled
share and chance over the first and over the last ``--window`` rounds, per seed and over all
seeds; the seeds culled and fossilized per round (where the cloned lifecycle drifts, it shows
there) and, with ``bc_anchor``, the KL to the cloned policy; and per seed which blueprints it
germinated in each slot over those rounds (from the run's events). Seeds run ``--jobs`` at a
time. Prints one JSON object (needs esper-antipatterns) and, with ``--out``, writes the markdown
quoting it with the share of every round.

With ``--bc-collect N``, each seed first records N heuristic episodes on the same action space
(``esper collect``; the heuristic only ever picks a good blueprint) and PPO clones them before
its first round (``--bc-dataset``); with ``--policy-option bc_heads=op,slot`` only the
lifecycle is cloned and the blueprint head starts uniform, so the share still starts at chance
while seeds live long enough for what they are worth to show in the return.

The shares while training are of sampled actions, which the entropy bonus keeps exploring. With
``--evaluate N`` each trained policy also acts greedily on N held-out episodes beside the
heuristic (``esper evaluate``): its anti-pattern share there, and its test accuracy paired with
the heuristic's; with ``--sampled`` as well, the same policy sampling its actions there
(``sample=true``), which is the trained policy's own distribution without the updates of the
last rounds mixed in. With ``--work``, a seed whose training run finished in an earlier invocation is
reused (its history read from the run's summary), and so is its evaluation; a run that finished
fewer rounds than ``--rounds`` is resumed and trains on to ``--rounds`` (``esper run --resume DIR
--rounds N``), so 60 rounds can follow a 30-round invocation without repeating its first 30, and its
training minutes are those of every process that trained it. Each seed's folder records the
settings its run was trained with, and a later invocation with other settings (``--rounds``
aside) is refused rather than reported beside them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from learned_controllers import esper, evaluate, germinations_by_slot
from work_folder import claim_work

from esper_core.config import dump_toml
from esper_core.telemetry.jsonl import read_events

#: Held-out episodes: a seed no training run (seeds 0, 1, …) or cloned episode (1000, 2000, …) uses.
EVAL_SEED = 7000
GOOD = ("conv_light", "conv_small", "norm", "depthwise", "attention")
BAD = ("correlated_noise", "asymmetric_bottleneck", "momentum_dampener", "sigmoid_sandwich", "gain_amplifier",
       "deep_linear_stack", "expensive_identity", "redundant_ensemble", "kaiming_mismatch", "division_by_feature")


def pooled(history: list[dict], rounds: range) -> tuple[int, int, float]:
    """(anti-pattern germinations, germinations, anti-pattern germinations a uniform choice among
    the blueprints the mask offered would have made) over ``rounds``."""
    bad = total = 0
    expected = 0.0
    for h in (history[i] for i in rounds):
        share = h.get("antipattern_share")
        if share is not None:
            bad += round(share * h["germinations"])
            total += h["germinations"]
            expected += h["antipattern_chance"] * h["germinations"]
    return bad, total, expected


def train(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One PPO training run (after recording its behaviour-cloning data, with ``--bc-collect``):
    its per-round history, the table of what it germinated in each slot, first and last
    ``--window`` rounds, and with ``--evaluate`` what the trained policy does on held-out episodes."""
    if args.work is None:
        with tempfile.TemporaryDirectory() as tmp:
            return train_in(Path(tmp), seed, args)
    return train_in(args.work / f"seed{seed}", seed, args)


def train_in(base: Path, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`train` with its files under ``base``: the reward settings, the cloned episodes
    (``bc``, continued where an earlier invocation left it), the training run (``run``, reused
    when an earlier invocation finished it, trained on when it finished fewer rounds; the minutes
    of its processes in ``training-minutes.json``) and the evaluations
    (``eval-greedy-N-after-R.json``, ``eval-sampled-N-after-R.json``, likewise)."""
    blueprints = ",".join(args.good + BAD)
    # --rounds may grow (the run is resumed); anything else would mix two recipes in one run.
    claim_work(base, {"seed": seed, **{k: getattr(args, k) for k in (
        "task", "good", "envs", "lr", "reward_preset", "reward_weight", "policy_option", "bc_collect",
        "param_budget")}})
    config = base / "reward.toml"
    settings = {"reward_preset": args.reward_preset, "param_budget": args.param_budget}
    table: dict[str, Any] = {"run": {k: v for k, v in settings.items() if v is not None}}
    if args.reward_weight:
        table["rewards"] = dict(args.reward_weight)
    config.write_text(dump_toml(table))
    run = base / "run"
    summary = read_summary(run) if (run / "summary.json").is_file() else None
    reused = summary is not None
    # Minutes of each training process of this run: a resumed run's summary times only its own.
    segments_file = base / "training-minutes.json"
    if summary is not None and len(summary["history"]) < args.rounds:
        # A finished run of fewer rounds trains on to --rounds (a resume may raise `rounds`).
        segments = json.loads(segments_file.read_text()) if segments_file.is_file() else [minutes(summary)]
        esper("run", "--resume", str(run), "--rounds", str(args.rounds), "--json")
        summary = read_summary(run)
        segments_file.write_text(json.dumps([*segments, minutes(summary)]))
        reused = False
    elif summary is None:
        clone: tuple[str, ...] = ()
        if args.bc_collect:
            esper("collect", "--policy", "heuristic", "--episodes", str(args.bc_collect), "--task", args.task,
                  "--seed", str(1000 * (seed + 1)), "--blueprints", blueprints, "--config", str(config),
                  "--out", str(base / "bc"))
            clone = ("--bc-dataset", str(base / "bc"))
        esper("run", "--task", args.task, "--policy", "ppo", "--seed", str(seed), "--rounds", str(args.rounds),
              "--envs", str(args.envs), "--blueprints", blueprints, "--config", str(config),
              "--no-compare-baseline", "--policy-option", f"lr={args.lr}", *clone,
              *(f"--policy-option={o}" for o in args.policy_option), "--out", str(run), "--json")
        summary = read_summary(run)
    history = summary["history"]
    if len(history) != args.rounds:
        raise SystemExit(f"{run} has {len(history)} rounds, not --rounds {args.rounds}")
    events = list(read_events(run / "events.jsonl"))
    result = {"history": history, "by_slot": germinations_by_slot(events, args.envs, len(history), window=args.window),
              "train_minutes": round(sum(json.loads(segments_file.read_text())) if segments_file.is_file()
                                     else minutes(summary), 1), "reused": reused}
    if args.evaluate:
        name = f"{args.evaluate}-after-{args.rounds}"
        # One evaluation process (jobs 1) per seed: its episodes are evaluation seed EVAL_SEED's.
        greedy = evaluate(base, f"greedy-{name}", run / "policy.pt", "heuristic", args.evaluate, 1, EVAL_SEED)
        result["evaluation"] = held_out(greedy)
        if args.sampled:
            sampled = evaluate(base, f"sampled-{name}", run / "policy.pt", "noop", args.evaluate, 1,
                               EVAL_SEED, ("sample=true",))
            result["sampled_evaluation"] = germinated(sampled["policies"][0])
    return result


def read_summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text())


def minutes(summary: dict[str, Any]) -> float:
    """The minutes the run's last training process took (its summary's ``wall_seconds``)."""
    return summary["wall_seconds"] / 60


def germinated(policy: dict[str, Any]) -> dict[str, Any]:
    """A policy's germinations on evaluated episodes: anti-patterns, all, and per blueprint."""
    counts: dict[str, int] = {}
    for blueprint, outcomes in policy["per_blueprint"].items():
        counts[blueprint.split(":")[-1]] = sum(outcomes.values())
    bad = sum(n for b, n in counts.items() if b in BAD)
    total = sum(counts.values())
    return {"episodes": len(policy["returns"]), "antipattern": bad, "germinations": total, "share": share(bad, total),
            "germinated": dict(sorted(counts.items(), key=lambda x: -x[1]))}


def held_out(evaluation: dict[str, Any]) -> dict[str, Any]:
    """What the trained policy (greedy) germinated on the held-out episodes, and its test accuracy
    paired with the heuristic's on the same episodes."""
    ppo, heuristic = evaluation["policies"]
    return {**germinated(ppo),
            "test_vs_heuristic": evaluation["paired_test_accuracy"]["heuristic"],
            "params_added": round(ppo["params_added_mean"]), "heuristic_params_added":
                round(heuristic["params_added_mean"])}


def share(bad: float, total: int) -> float | None:
    return round(bad / total, 3) if total else None


def window_result(bad: int, total: int, expected: float) -> dict:
    return {"antipattern": bad, "germinations": total, "share": share(bad, total), "chance": share(expected, total)}


def reward_weight(text: str) -> tuple[str, float]:
    term, sep, weight = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not TERM=WEIGHT")
    return term.strip(), float(weight)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--good", type=lambda v: tuple(v.split(",")), default=GOOD,
                        help="the good blueprints offered beside the ten anti-patterns (default: micro's five; on "
                             "shapes the task's catalog, conv_light,attention,norm,depthwise,bottleneck,conv_small,"
                             "conv_heavy, is what the PPO goal runs offer)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--envs", type=int, default=2)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--task", default="micro")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--reward-preset", default="shaped")
    parser.add_argument("--reward-weight", action="append", default=[], metavar="TERM=WEIGHT", type=reward_weight,
                        help="a reward term's weight on top of --reward-preset's (the run's [rewards] table), e.g. "
                             "action_cost=0.1, the shaped preset's: germinating then costs as much as a point of "
                             "final accuracy under sparse")
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--bc-collect", type=int, default=0,
                        help="heuristic episodes recorded per seed and cloned before training (0: none)")
    parser.add_argument("--param-budget", type=int, default=None,
                        help="seed parameters per episode; blueprints that do not fit are masked, so chance is "
                             "read from the mask at each germination")
    parser.add_argument("--evaluate", type=int, default=0, metavar="N",
                        help=f"run each trained policy (greedy) and the heuristic on N held-out episodes (seed "
                             f"{EVAL_SEED}) and report the policy's anti-pattern share there")
    parser.add_argument("--sampled", action="store_true",
                        help="with --evaluate, also run each trained policy sampling its actions (sample=true) on "
                             "the same held-out episodes")
    parser.add_argument("--jobs", type=int, default=1, help="training runs side by side")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep each seed's files in WORK/seedN (default: a temporary directory); the "
                             "cloned episodes are continued, a finished training run is reused or trained on")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = dict(zip(seeds, pool.map(lambda s: train(s, args), seeds), strict=True))
    histories = {seed: run["history"] for seed, run in runs.items()}
    wall = time.perf_counter() - start
    per_seed = {}
    totals: dict[str, tuple[int, int, float]] = {"first": (0, 0, 0.0), "last": (0, 0, 0.0)}
    for seed, history in histories.items():
        first = pooled(history, range(0, args.window))
        last = pooled(history, range(len(history) - args.window, len(history)))
        for name, counts in (("first", first), ("last", last)):
            bad, total, expected = totals[name]
            totals[name] = (bad + counts[0], total + counts[1], expected + counts[2])
        per_seed[seed] = {
            "first_rounds": window_result(*first),
            "last_rounds": window_result(*last),
            "per_round": [h.get("antipattern_share") for h in history],
            "chance_per_round": [h.get("antipattern_chance") for h in history],
            "germinations_per_round": [h["germinations"] for h in history],
            "culled_per_round": [h["culled"] for h in history],
            "fossilized_per_round": [h["fossilized"] for h in history],
            "kl_to_cloned_per_round": [h.get("kl_to_cloned") for h in history],
            "final_accuracy_first": round(
                sum(h["mean_final_accuracy"] for h in history[:args.window]) / args.window, 2),
            "final_accuracy_last": round(
                sum(h["mean_final_accuracy"] for h in history[-args.window:]) / args.window, 2),
            "return_first": round(sum(h["mean_return"] for h in history[:args.window]) / args.window, 3),
            "return_last": round(sum(h["mean_return"] for h in history[-args.window:]) / args.window, 3),
            "germinations_by_slot": runs[seed]["by_slot"],
            "train_minutes": runs[seed]["train_minutes"],
            "reused": runs[seed]["reused"],
            "held_out": runs[seed].get("evaluation"),
            "held_out_sampled": runs[seed].get("sampled_evaluation"),
        }
    result = {
        "task": args.task, "rounds": args.rounds, "envs": args.envs, "window": args.window, "lr": args.lr,
        "reward_preset": args.reward_preset, "reward_weights": dict(args.reward_weight),
        "param_budget": args.param_budget, "policy_options": args.policy_option,
        "bc_collect": args.bc_collect, "good": list(args.good),
        "wall_minutes": round(wall / 60, 1),
        "uniform_share": round(len(BAD) / (len(BAD) + len(args.good)), 3),
        "per_seed": per_seed,
        "pooled": {name: window_result(*counts) for name, counts in totals.items()},
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(render(result, sys.argv[1:]))


def render(result: dict, argv: list[str]) -> str:
    w = result["window"]
    budget = result.get("param_budget")
    lines = [
        "# Does PPO learn to avoid the anti-patterns?",
        "",
        f"Written by `.venv/bin/python benchmarks/ppo_antipatterns.py {shlex.join(argv)}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): task `{result['task']}`, reward preset "
        f"`{result['reward_preset']}`"
        + "".join(f" with {term} weighted {weight}" for term, weight in result.get("reward_weights", {}).items())
        + (f", a budget of {budget} seed parameters per episode" if budget is not None else "")
        + f", {result['rounds']} rounds × {result['envs']} environments per seed, PPO lr "
        + " ".join([str(result["lr"]), *result["policy_options"]])
        + (f", after cloning {result['bc_collect']} heuristic episodes" if result.get("bc_collect") else "")
        + f"; {len(result['good'])} good blueprints ({', '.join(result['good'])}) and {len(BAD)} anti-patterns "
        f"in the action space (uniform share {result['uniform_share']}); {result['wall_minutes']} min on this machine. "
        "Shares are of the germinations sampled during training. Chance is what a uniform choice among the "
        "blueprints the action mask offered at the same germinations would have picked"
        + (" (the budget masks the blueprints that do not fit)." if budget is not None else "."),
        "",
        f"| seed | first {w} rounds (chance) | last {w} rounds (chance) | return first → last | "
        "final val % first → last | culled / fossilized a round, first → last |",
        "|---|---|---|---|---|---|",
    ]

    def per_round(counts: list[int], rounds: slice) -> float:
        window = counts[rounds]
        return round(sum(window) / len(window), 1)

    def cell(r: dict) -> str:
        return f"{r['antipattern']} / {r['germinations']} = {r['share']} ({r['chance']})"

    for seed, r in result["per_seed"].items():
        lines.append(f"| {seed} | {cell(r['first_rounds'])} | {cell(r['last_rounds'])} | "
                     f"{r['return_first']:+.2f} → {r['return_last']:+.2f} | "
                     f"{r['final_accuracy_first']} → {r['final_accuracy_last']} | "
                     + " → ".join(f"{per_round(r['culled_per_round'], rounds)} / "
                                  f"{per_round(r['fossilized_per_round'], rounds)}"
                                  for rounds in (slice(0, w), slice(-w, None))) + " |")
    p = result["pooled"]
    lines += [f"| pooled | {cell(p['first'])} | {cell(p['last'])} | | | |", "",
              "Share per round (anti-pattern germinations / germinations; - where a round germinated nothing):", ""]
    for seed, r in result["per_seed"].items():
        lines.append(f"- seed {seed}: " + " ".join("-" if s is None else f"{s:.2f}" for s in r["per_round"]))
    lines += ["", "Chance per round:", ""]
    for seed, r in result["per_seed"].items():
        lines.append(f"- seed {seed}: " + " ".join("-" if s is None else f"{s:.2f}" for s in r["chance_per_round"]))
    lines += ["", "Seeds culled / fossilized per round (all environments; a drift of the cloned lifecycle shows "
              "here):", ""]
    for seed, r in result["per_seed"].items():
        lines.append(f"- seed {seed}: " + " ".join(
            f"{c}/{f}" for c, f in zip(r["culled_per_round"], r["fossilized_per_round"], strict=True)))
    if any(k is not None for r in result["per_seed"].values() for k in r["kl_to_cloned_per_round"]):
        lines += ["", "KL(cloned policy ‖ policy) on the anchored heads per round (`bc_anchor`; the update's mean):",
                  ""]
        for seed, r in result["per_seed"].items():
            lines.append(f"- seed {seed}: " + " ".join(
                "-" if k is None else f"{k:.3f}" for k in r["kl_to_cloned_per_round"]))
    evaluated = {seed: r["held_out"] for seed, r in result["per_seed"].items() if r.get("held_out")}
    if evaluated:
        n = next(iter(evaluated.values()))["episodes"]
        lines += ["", f"The trained policies (greedy) on {n} held-out episodes (evaluation seed {EVAL_SEED}), each "
                  "with the heuristic on the same episodes:", "",
                  "| seed | anti-pattern germinations | germinated | test points over the heuristic (t) | "
                  "parameters added, PPO / heuristic |", "|---|---|---|---|---|"]
        for seed, e in evaluated.items():
            d = e["test_vs_heuristic"]
            t = "-" if d["t"] is None else f"{d['t']:.2f}"
            kinds = ", ".join(f"{b} {k}" for b, k in e["germinated"].items()) or "-"
            lines.append(f"| {seed} | {e['antipattern']} / {e['germinations']} = {e['share']} | {kinds} | "
                         f"{d['mean']:+.2f} ± {d['sd']:.2f} ({t}) | {e['params_added']} / "
                         f"{e['heuristic_params_added']} |")
    sampled = {seed: r["held_out_sampled"] for seed, r in result["per_seed"].items() if r.get("held_out_sampled")}
    if sampled:
        n = next(iter(sampled.values()))["episodes"]
        lines += ["", f"The same trained policies sampling their actions (`sample=true`) on the same {n} held-out "
                  "episodes:", "", "| seed | anti-pattern germinations | germinated |", "|---|---|---|"]
        for seed, e in sampled.items():
            kinds = ", ".join(f"{b} {k}" for b, k in e["germinated"].items()) or "-"
            lines.append(f"| {seed} | {e['antipattern']} / {e['germinations']} = {e['share']} | {kinds} |")
    lines += ["", "Training time per seed (minutes, as the run recorded it): " + ", ".join(
        f"seed {seed} {r['train_minutes']}" + (" (reused from an earlier invocation)" if r["reused"] else "")
        for seed, r in result["per_seed"].items()) + "."]
    for seed, r in result["per_seed"].items():
        if r.get("germinations_by_slot"):
            lines += ["", f"What seed {seed}'s PPO germinated while training (sampled actions, every environment):", "",
                      *r["germinations_by_slot"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
