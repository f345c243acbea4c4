"""How often recorded episodes hold a choice of slot, and what the behaviour policy chose there.

    python benchmarks/dataset_choices.py DIR [DIR ...] [--out docs/iql_dataset_slot_choices.md]

An offline learner can only copy (or improve on) a choice it has seen made. For each ``esper
collect`` dataset and each op that takes a slot, this counts the steps at which the mask offered
that op in two or more slots, and at those steps what the policy did: the op in which slot, or
another op. Used to explain where IQL departs from the heuristic on held-out episodes: a choice
the data holds a handful of times is learned from that handful.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from report import publish

from esper_core.contracts.decisions import Op
from esper_policies.offline.dataset import EpisodeDataset

SLOT_OPS = [op for op in Op if op is not Op.WAIT]


def choices(directory: Path) -> dict[str, Any]:
    """Per op: steps offering it in ≥ 2 slots, and what was chosen there (``"OP slot"`` or ``"OP"``)."""
    data = EpisodeDataset(directory)
    slot_names = list(data.metadata.get("slot_names", ()))
    steps = 0
    per_op: dict[str, dict[str, Any]] = {op.name: {"steps": 0, "chosen": {}} for op in SLOT_OPS}
    for shard in data.shards:
        episode = data.read_episode(shard)
        actions, mask_slots = episode["actions"], episode["mask_slots"]
        steps += len(actions)
        for t in range(len(actions)):
            op_taken, slot_taken = Op(int(actions[t, 0])), int(actions[t, 1])
            taken = op_taken.name if op_taken is Op.WAIT else (
                f"{op_taken.name} {slot_names[slot_taken] if slot_taken < len(slot_names) else slot_taken}")
            for op in SLOT_OPS:
                if int(mask_slots[t, op].sum()) >= 2:
                    row = per_op[op.name]
                    row["steps"] += 1
                    row["chosen"][taken] = row["chosen"].get(taken, 0) + 1
    return {"dataset": str(directory), "policy": data.metadata.get("policy"), "episodes": len(data),
            "steps": steps, "per_op": per_op}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = [choices(d) for d in args.datasets]
    lines = ["# Choices of slot in recorded episodes", "",
             f"Written by `.venv/bin/python benchmarks/dataset_choices.py {shlex.join(sys.argv[1:])}`. "
             "Per op, the steps at which the mask offered it in two or more slots, and what the "
             "behaviour policy did at those steps.", "",
             "| dataset | policy | episodes | steps | op offered in ≥ 2 slots | steps | chosen there (steps) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        for op, row in r["per_op"].items():
            chosen = ", ".join(f"{k} {n}" for k, n in sorted(row["chosen"].items(), key=lambda kv: (-kv[1], kv[0])))
            lines.append(f"| {r['dataset']} | {r['policy']} | {r['episodes']} | {r['steps']} | {op} | {row['steps']} "
                         f"| {chosen or '-'} |")
    publish(lines, args.out, results)


if __name__ == "__main__":
    main()
