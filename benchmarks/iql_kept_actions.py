"""Which recorded actions a trained IQL critic rates above V, per behaviour policy, and which the
trained actor reproduces.

    .venv/bin/python benchmarks/iql_kept_actions.py --train /tmp/iql/heuristic-0,/tmp/iql/random-0 \\
        --checkpoint RUN_A/policy.pt --checkpoint RUN_B/policy.pt --out docs/iql_kept_actions.md

For every ``--checkpoint`` (a ``policy.pt`` of ``esper run --policy iql``, with its critic) and
every step of the ``--train`` episodes it was trained on: the advantage ``min(Q₁, Q₂)(s, a) − V(s)``
of the recorded action, and whether the actor's greedy action is the recorded one. Per behaviour
policy it reports the share of recorded actions with a positive advantage (those
``advantage_weights = binary`` keeps in the policy loss; the exponential weights keep all, down-
weighting the rest) and the share the actor reproduces. The critic saved is the online Q (the
policy loss reads its Polyak-averaged target, which trails it by 0.5 % a step). The markdown
written to ``--out`` is the output.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from iql_agreement import Namer, datasets, scored_episodes
from report import publish

from esper_policies.checkpoint import load
from esper_policies.iql.trainer import FittedIQL


def loaded(path: Path, name: Namer, blueprint_keys: list[str]) -> tuple[FittedIQL, dict[str, Any]]:
    policy = load(path, policy="iql", blueprint_keys=blueprint_keys, slot_names=name.slots)
    if policy.critic is None:
        raise SystemExit(f"--checkpoint {str(path)!r} holds no critic (written before critics were saved)")
    policy.critic.eval()
    fitted = FittedIQL(actor=policy.network, q=policy.critic, obs_norm=policy.obs_norm, history=[])
    return fitted, dict(policy.training.get("config", {}))


def scored(fitted: FittedIQL, datasets: list[Any], name: Namer) -> tuple[list[float], int]:
    """The recorded actions' Q̄ − V over ``datasets``, and how many of them the actor reproduces."""
    advantages, reproduced = [], 0
    for actions, chosen, a_recorded, _ in scored_episodes(fitted, datasets):
        advantages.extend(a_recorded.tolist())
        reproduced += sum(name(a) == name(c) for a, c in zip(actions, chosen, strict=True))
    return advantages, reproduced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="comma-separated `esper collect` directories the "
                                                       "checkpoints were trained on")
    parser.add_argument("--checkpoint", action="append", type=Path, required=True,
                        help="a trained IQL policy.pt; repeatable")
    parser.add_argument("--note", default=None, help="a paragraph put under the title")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = datasets(args.train, "--train")
    name = Namer(train[0])
    keys = [b["key"] if isinstance(b, dict) else b for b in train[0].metadata["blueprint_catalog"]]
    behaviours = sorted({d.metadata["policy"] for d in train})
    lines = ["# Recorded actions IQL's critic rates above V, and those its actor reproduces", "",
             f"`{shlex.join(['benchmarks/iql_kept_actions.py', *sys.argv[1:]])}`", ""]
    if args.note:
        lines += [args.note, ""]
    lines += ["| checkpoint | advantage_weights | behaviour | steps | Q̄ − V > 0 | mean Q̄ − V (sd) | actor reproduces |",
              "|---|---|---|---|---|---|---|"]
    data: dict[str, Any] = {}
    for path in args.checkpoint:
        fitted, config = loaded(path, name, keys)
        rows = {}
        for policy in behaviours:
            own = [d for d in train if d.metadata["policy"] == policy]
            adv, reproduced = scored(fitted, own, name)
            rows[policy] = {"steps": len(adv), "positive": sum(a > 0 for a in adv),
                            "mean_advantage": statistics.fmean(adv), "sd_advantage": statistics.stdev(adv),
                            "reproduced": reproduced}
            r = rows[policy]
            lines.append(f"| {path} | {config.get('advantage_weights', 'exponential')} | {policy} | {r['steps']} | "
                         f"{r['positive']} ({100 * r['positive'] / r['steps']:.0f} %) | {r['mean_advantage']:+.3f} "
                         f"({r['sd_advantage']:.3f}) | "
                         f"{r['reproduced']} ({100 * r['reproduced'] / r['steps']:.0f} %) |")
        data[str(path)] = {"config": config, "behaviours": rows}
    lines.append("")
    publish(lines, args.out, data)


if __name__ == "__main__":
    main()
