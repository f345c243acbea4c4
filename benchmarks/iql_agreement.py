"""Where IQL's greedy policy departs from a behaviour policy, on that policy's episodes IQL never saw.

    .venv/bin/python benchmarks/iql_agreement.py --train /tmp/iql/heuristic-0,/tmp/iql/random-0 \\
        --probe /tmp/iql/heldout-0 --variant beta=3 --variant beta=10 --out docs/iql_agreement_shapes.md

IQL is trained in this process (``esper_policies.iql.trainer.fit``, the code ``esper run --policy
iql`` runs) on ``--train`` for each ``--variant`` (``KEY=VALUE`` IQL options joined by ``+``).
Then, on every step of the ``--probe`` episodes (recorded by ``esper collect`` with episode seeds
no training episode used), its greedy action is compared with the recorded one: how often they
agree, which actions it puts in place of which, and each probe episode's first departure (after
it, a policy acting on its own would have left the recorded trajectory). ``Q̄ − V`` is IQL's own
advantage of each of the two actions there. The same agreement on the training episodes, per
behaviour policy, shows how far the actor fitted each policy's recorded actions. The markdown
written to ``--out`` is the output.
"""

from __future__ import annotations

import argparse
import collections
import shlex
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from report import publish

from esper_core.config import parse_key_values
from esper_core.contracts.decisions import Op
from esper_core.contracts.observation import OBSERVATION_SCHEMA_VERSION
from esper_core.errors import ConfigError
from esper_core.options import parse_options
from esper_policies.encoding import MaskBatch
from esper_policies.iql.config import IQLConfig
from esper_policies.iql.trainer import FittedIQL, fit
from esper_policies.offline.dataset import EpisodeDataset
from esper_policies.ppo.bc import discounted_returns


def parse_variant(variant: str) -> dict[str, Any]:
    try:
        return parse_key_values([o for o in variant.split("+") if o.strip()], flag="--variant")
    except ConfigError as exc:
        raise SystemExit(f"{exc}; IQL options are joined by '+', e.g. beta=10+steps=20000") from None


def datasets(spec: str, flag: str) -> list[EpisodeDataset]:
    paths = [Path(p) for p in spec.split(",") if p.strip()]
    missing = [str(p) for p in paths if not (p / "dataset.json").is_file()]
    if not paths or missing:
        raise SystemExit(f"{flag}: not an `esper collect` directory: {', '.join(missing) or spec!r}")
    return [EpisodeDataset(p) for p in paths]


class Namer:
    def __init__(self, dataset: EpisodeDataset) -> None:
        catalog = dataset.metadata["blueprint_catalog"]
        self.blueprints = [(b["key"] if isinstance(b, dict) else b).split(":")[-1] for b in catalog]
        self.slots = dataset.metadata["slot_names"]

    def __call__(self, action: torch.Tensor) -> str:
        op = Op(int(action[0]))
        if op is Op.WAIT:
            return "WAIT"
        if op is Op.GERMINATE:
            return f"GERMINATE {self.slots[int(action[1])]} {self.blueprints[int(action[2])]}"
        return f"{op.name} {self.slots[int(action[1])]}"


def scored_episodes(fitted: FittedIQL, datasets: list[EpisodeDataset]
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Each recorded episode as (recorded actions, IQL's greedy actions, the recorded actions'
    Q̄ − V, the greedy actions' Q̄ − V), step by step."""
    for dataset in datasets:
        for shard in dataset.shards:
            episode = dataset.read_episode(shard)
            obs = normalized(fitted, episode["obs"])
            masks = MaskBatch(episode["mask_ops"], episode["mask_slots"], episode["mask_blueprints"])
            with torch.no_grad():
                features, _ = fitted.actor.features(obs)
                chosen = fitted.actor.heads(features, masks, greedy=True).actions
                v = fitted.actor.value(features)
                a_chosen = torch.min(*fitted.q(obs, chosen)) - v
                a_recorded = torch.min(*fitted.q(obs, episode["actions"])) - v
            yield episode["actions"], chosen, a_recorded, a_chosen


def compare(fitted: FittedIQL, probe: list[EpisodeDataset], name: Namer) -> dict[str, Any]:
    agree = total = 0
    swaps: collections.Counter[tuple[str, str]] = collections.Counter()
    firsts: list[tuple[int, str, str, float, float]] = []
    for actions, chosen, a_recorded, a_chosen in scored_episodes(fitted, probe):
        departed = False
        for t in range(actions.shape[0]):
            total += 1
            recorded, own = name(actions[t]), name(chosen[t])
            if recorded == own:
                agree += 1
                continue
            swaps[(recorded, own)] += 1
            if not departed:
                departed = True
                firsts.append((t + 1, recorded, own, float(a_recorded[t]), float(a_chosen[t])))
    return {"agree": agree, "total": total, "swaps": swaps, "firsts": firsts,
            "episodes": sum(len(d) for d in probe)}


def normalized(fitted: FittedIQL, obs: torch.Tensor) -> torch.Tensor:
    return fitted.obs_norm.normalize(obs) if fitted.obs_norm is not None else obs


def value_fit(fitted: FittedIQL, train: list[EpisodeDataset], gamma: float) -> tuple[float, float]:
    """Mean V over the training states, and the mean of what V estimates there under the data's own
    actions, the recorded discounted return-to-go (IQL's V, an upper expectile, should sit at or
    above it once trained)."""
    values, returns = [], []
    for dataset in train:
        for shard in dataset.shards:
            episode = dataset.read_episode(shard)
            with torch.no_grad():
                values.extend(fitted.actor.value(fitted.actor.features(normalized(fitted, episode["obs"]))[0]).tolist())
            rewards = episode["rewards"].unsqueeze(1)  # one episode as the (T, 1) batch discounted_returns takes
            every_step = torch.ones_like(rewards, dtype=torch.bool)
            returns.extend(discounted_returns(rewards, every_step, gamma)[:, 0].tolist())
    return statistics.fmean(values), statistics.fmean(returns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="comma-separated `esper collect` directories IQL trains on")
    parser.add_argument("--probe", required=True, help="comma-separated `esper collect` directories of held-out "
                                                       "episodes of the behaviour policy to compare with")
    parser.add_argument("--variant", action="append", required=True, help="IQL options, KEY=VALUE joined by '+'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default=None, help="a paragraph put under the title")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, probe = datasets(args.train, "--train"), datasets(args.probe, "--probe")
    name = Namer(train[0])
    lines = [f"# IQL's greedy actions against a behaviour policy's, on {sum(len(d) for d in probe)} held-out "
             "episodes", "", f"`{shlex.join(['benchmarks/iql_agreement.py', *sys.argv[1:]])}`", ""]
    if args.note:
        lines += [args.note, ""]
    lines += [f"Observation schema v{OBSERVATION_SCHEMA_VERSION}. Training data: "
              + "; ".join(f"{d.path.name} ({d.metadata['policy']}, {len(d)} episodes, mean return "
                          f"{statistics.fmean(float(d.read_episode(s)['total_reward']) for s in d.shards):.2f})"
                          for d in train)
              + ". Probe: " + ", ".join(f"{d.path.name} ({d.metadata['policy']}, {len(d)} episodes)" for d in probe)
              + ".", ""]
    data: dict[str, Any] = {"observation_version": OBSERVATION_SCHEMA_VERSION, "variants": {}}
    for variant in args.variant:
        options = parse_variant(variant)
        config = parse_options(IQLConfig, {"dataset": args.train, **options}, owner="--variant")
        started = time.perf_counter()
        fitted = fit(config, train, n_slots=len(name.slots), n_blueprints=len(name.blueprints), seed=args.seed)
        seconds = time.perf_counter() - started
        result = compare(fitted, probe, name)
        result["mean_v"], result["mean_return_to_go"] = value_fit(fitted, train, config.gamma)
        # How closely the actor reproduces its own training data, per behaviour policy: near 100 %
        # for the random policy's episodes means it fitted random actions state by state.
        fits = {policy: compare(fitted, [d for d in train if d.metadata["policy"] == policy], name)
                for policy in sorted({d.metadata["policy"] for d in train})}
        result["training_fit"] = {policy: {"agree": f["agree"], "total": f["total"]} for policy, f in fits.items()}
        data["variants"][variant] = {**result, "swaps": [[r, o, n] for (r, o), n in result["swaps"].most_common()],
                                     "train_seconds": round(seconds, 1)}
        lines += [f"## {variant}", "",
                  f"Trained {config.steps} steps in {seconds:.0f} s. Greedy agreement with the recorded actions: "
                  f"**{result['agree']} of {result['total']}** steps; {len(result['firsts'])} of "
                  f"{result['episodes']} episodes leave the recorded trajectory. V over the training states: mean "
                  f"{result['mean_v']:.2f}, against {result['mean_return_to_go']:.2f} for the recorded discounted "
                  "return-to-go. Greedy agreement with its own training episodes: "
                  + "; ".join(f"{policy} {f['agree']} of {f['total']} steps ({100 * f['agree'] / f['total']:.0f} %)"
                              for policy, f in result["training_fit"].items()) + ".", ""]
        if result["swaps"]:
            lines += ["| recorded action | IQL's greedy action | steps |", "|---|---|---|"]
            lines += [f"| {r} | {o} | {n} |" for (r, o), n in result["swaps"].most_common()]
            lines += ["", "First departure in each episode that departs:", "",
                      "| step | recorded action (Q̄ − V) | IQL's action (Q̄ − V) |", "|---|---|---|"]
            lines += [f"| {t} | {r} ({ar:+.3f}) | {o} ({ao:+.3f}) |" for t, r, o, ar, ao in sorted(result["firsts"])]
            lines.append("")
    publish(lines, args.out, data)


if __name__ == "__main__":
    main()
