"""Two ``esper collect`` datasets of the same behaviour policy and seeds, recorded under two
settings: whether each episode's actions and rewards are the same in both, and per op how often
the mask offered it and the policy took it.

    python benchmarks/compare_datasets.py A_DIR:B_DIR [A_DIR:B_DIR ...] [--label-a A] [--label-b B]
        [--out docs/iql_gate_mask_datasets.md]

Used to check that a change to the action mask left a behaviour policy's episodes as they were
(same actions, same rewards) while changing what the mask offered.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import torch
from report import publish

from esper_core.contracts.decisions import Op
from esper_policies.offline.dataset import EpisodeDataset


def compare(a_dir: Path, b_dir: Path) -> dict[str, Any]:
    """Episode-by-episode comparison of two datasets recorded with the same seeds."""
    a, b = EpisodeDataset(a_dir), EpisodeDataset(b_dir)
    if len(a) != len(b):
        raise SystemExit(f"{a_dir} has {len(a)} episodes, {b_dir} {len(b)}: not the same recording")
    same_actions = same_rewards = steps = differing_masks = 0
    changes: dict[tuple[str, str], int] = {}
    offered = {"a": [0] * len(Op), "b": [0] * len(Op)}
    taken_when_offered = {"a": [0] * len(Op), "b": [0] * len(Op)}
    for shard_a, shard_b in zip(a.shards, b.shards, strict=True):
        x, y = a.read_episode(shard_a), b.read_episode(shard_b)
        same_actions += int(torch.equal(x["actions"], y["actions"]))
        same_rewards += int(x["rewards"].shape == y["rewards"].shape and torch.equal(x["rewards"], y["rewards"]))
        steps += len(x["actions"])
        if x["mask_ops"].shape == y["mask_ops"].shape:
            differing_masks += int((x["mask_ops"] != y["mask_ops"]).any(dim=1).sum())
        n = min(len(x["actions"]), len(y["actions"]))
        for i in (x["actions"][:n, 0] != y["actions"][:n, 0]).nonzero().flatten().tolist():
            change = (Op(int(y["actions"][i, 0])).name, Op(int(x["actions"][i, 0])).name)
            changes[change] = changes.get(change, 0) + 1
        for key, data in (("a", x), ("b", y)):
            for op in Op:
                on = data["mask_ops"][:, op]
                offered[key][op] += int(on.sum())
                taken_when_offered[key][op] += int((on & (data["actions"][:, 0] == op)).sum())
    return {"episodes": len(a), "steps": steps, "same_actions": same_actions, "same_rewards": same_rewards,
            "differing_masks": differing_masks, "offered": offered, "taken": taken_when_offered,
            "changes": changes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pairs", nargs="+", metavar="A_DIR:B_DIR")
    parser.add_argument("--label-a", default="A")
    parser.add_argument("--label-b", default="B")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    la, lb = args.label_a, args.label_b
    lines = ["# The same recorded episodes under two settings", "",
             f"Written by `.venv/bin/python benchmarks/compare_datasets.py {shlex.join(sys.argv[1:])}`. "
             f"A = {la}, B = {lb}. Offered: steps at which the mask allowed the op in some slot; "
             "taken: of those, steps at which the behaviour policy chose it. Ops that differ: at the same step "
             "of the same episode, until either episode ends.", "",
             "| A | B | episodes | same actions | same rewards | steps | steps whose op mask differs "
             "| FOSSILIZE offered A / B | FOSSILIZE taken when offered A / B | ops that differ, B → A (steps) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    results = []
    for pair in args.pairs:
        a_dir, b_dir = (Path(p) for p in pair.split(":"))
        r = compare(a_dir, b_dir)
        results.append({"a": str(a_dir), "b": str(b_dir), **r,
                        "changes": [{"b": b, "a": a, "steps": k} for (b, a), k in sorted(r["changes"].items())]})
        offered, taken = r["offered"], r["taken"]
        f = Op.FOSSILIZE
        changed = ", ".join(f"{b} → {a} ({k})" for (b, a), k in sorted(r["changes"].items())) or "none"
        lines.append(f"| {a_dir} | {b_dir} | {r['episodes']} | {r['same_actions']} | {r['same_rewards']} "
                     f"| {r['steps']} | {r['differing_masks']} | {offered['a'][f]} / {offered['b'][f]} "
                     f"| {taken['a'][f]} / {taken['b'][f]} | {changed} |")
    publish(lines, args.out, results)


if __name__ == "__main__":
    main()
