"""What a trained policy and the behaviour policies did, step by step, on chosen held-out episodes.

    .venv/bin/python benchmarks/episode_trace.py --policy-checkpoint RUN/policy.pt --eval-seed 7001 \\
        --episode 5 --against heuristic --out docs/iql_trace_shapes.md

``esper evaluate --seed S`` runs held-out episode ``k`` on task seed ``episode_seed(S, env=0,
episode=k, held_out=True)``; this script runs the same episodes (``--eval-seed S --episode k``,
repeatable) under the checkpoint's policy (acting with ``--policy-option``, as ``esper evaluate``'s)
and each of ``--against``, with the checkpoint's run
settings, and lists every decision that is not WAIT (and whether it was applied), every G5 result
and every stage change into CULLED with its reason, then the episode's return and final accuracy.
The markdown written to ``--out`` is the output.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import attrs
import torch
from report import publish

from esper_core.config import RunConfig, parse_key_values
from esper_core.contracts.events import DecisionMade, GateEvaluated, SeedLifecycle
from esper_core.errors import ConfigError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.policies import make_policy
from esper_core.setup.resolve import resolve_run
from esper_core.setup.tasks import build_task, episode_seed, prepare_task
from esper_core.storage.policy_checkpoint import load_policy_checkpoint
from esper_core.tolaria.episode import run_episode


def describe(event: Any) -> str | None:
    if isinstance(event, DecisionMade) and event.op != "WAIT":
        target = " ".join(str(x) for x in (event.slot, event.blueprint) if x)
        return f"{event.op} {target}" + ("" if event.applied else " (not applied)")
    if isinstance(event, GateEvaluated) and event.gate == "g5_contribution":
        return f"G5 {event.slot}: {'passed' if event.passed else 'refused'} ({event.reason})"
    if isinstance(event, SeedLifecycle) and event.to_stage == "CULLED":
        return f"{event.slot} {event.blueprint} culled: {event.reason}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy-checkpoint", type=Path, required=True)
    parser.add_argument("--eval-seed", type=int, required=True, help="the --seed given to esper evaluate")
    parser.add_argument("--episode", type=int, action="append", required=True, help="held-out episode index")
    parser.add_argument("--against", default="heuristic", help="comma-separated behaviour policies")
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the trained policy as it acts (as esper evaluate's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    try:
        acting = parse_key_values(args.policy_option, flag="--policy-option")
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    torch.set_num_threads(1)
    catalog = build_catalog(load_plugins(PluginSettings()))
    data = load_policy_checkpoint(args.policy_checkpoint)
    config = attrs.evolve(RunConfig.from_dict(data["run_config"]), policy=data["policy"], policy_options={},
                          telemetry=(), out=None, seed=args.eval_seed)
    resolved = resolve_run(config, catalog)
    device, _, slot_names = prepare_task(resolved)
    names = [data["policy"], *[a for a in args.against.split(",") if a and a != data["policy"]]]
    lines = ["# Held-out episodes step by step", "", f"`benchmarks/episode_trace.py {shlex.join(sys.argv[1:])}`", ""]
    rows: dict[str, Any] = {}
    for k in args.episode:
        seed = episode_seed(args.eval_seed, env=0, episode=k, held_out=True)
        lines += [f"## `esper evaluate --seed {args.eval_seed}`, episode {k} (task seed {seed})", ""]
        for name in names:
            options = {**acting, "checkpoint": str(args.policy_checkpoint)} if name == data["policy"] else {}
            policy = make_policy(resolved, name, catalog, slot_names, options)
            events: list[Any] = []
            result = run_episode(resolved, build_task(resolved, seed=seed, device=device), policy, episode=k,
                                 emit=events.append, policy_name=name, seed=seed)
            steps = [(e.epoch, text) for e in events if (text := describe(e)) is not None]
            rows[f"{k}/{name}"] = {"return": result.total_reward, "final_accuracy": result.final_accuracy,
                                   "test_accuracy": result.test_accuracy, "steps": steps}
            lines += [f"**{name}**: return {result.total_reward:+.2f}, final validation {result.final_accuracy:.2f} %"
                      + ("" if result.test_accuracy is None else f", test {result.test_accuracy:.2f} %"), ""]
            lines += [f"- epoch {epoch}: {text}" for epoch, text in steps] + [""]
    lines += departures(rows, args.episode, names)
    publish(lines, args.out, rows)


def first_departure(trained: list[tuple[int, str]], other: list[tuple[int, str]]) -> str:
    """Where two step lists first differ, as 'epoch E: A / epoch F: B' (a missing step reads '-')."""
    for k in range(max(len(trained), len(other))):
        mine = trained[k] if k < len(trained) else None
        theirs = other[k] if k < len(other) else None
        if mine != theirs:
            return " / ".join("-" if step is None else f"epoch {step[0]}: {step[1]}" for step in (mine, theirs))
    return "none"


def departures(rows: dict[str, Any], episodes: list[int], names: list[str]) -> list[str]:
    """A table: per episode and behaviour policy, the returns and the first step where the
    trained policy's trace parts from the behaviour policy's."""
    trained, others = names[0], names[1:]
    lines = ["## Where the traces part", "",
             f"| episode | against | {trained} return | its return | difference | first departure ({trained} / it) |",
             "|---|---|---|---|---|---|"]
    for k in episodes:
        mine = rows[f"{k}/{trained}"]
        for name in others:
            theirs = rows[f"{k}/{name}"]
            parted = first_departure(mine["steps"], theirs["steps"])
            lines.append(f"| {k} | {name} | {mine['return']:+.2f} | {theirs['return']:+.2f} | "
                         f"{mine['return'] - theirs['return']:+.2f} | {parted} |")
    return [*lines, ""]


if __name__ == "__main__":
    main()
