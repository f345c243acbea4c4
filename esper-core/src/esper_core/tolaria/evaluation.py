"""``esper evaluate``: a trained policy against baseline controllers on held-out seeds.

Every policy runs the same K episodes — the same held-out episode seeds (odd seeds from
:func:`~esper_core.tolaria.environments.episode_seed`, which training never uses; each episode's task,
and so its host's initial weights and data order, is built from its seed), the checkpoint's run
configuration — so the comparison is paired: differences come from the decisions, not from the
draw of hosts.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from esper_core.config import RunConfig
from esper_core.errors import ConfigError
from esper_core.options import check_count, option_names
from esper_core.paired import paired_difference
from esper_core.plugins.registry import Catalog
from esper_core.setup.policies import make_policy
from esper_core.setup.resolve import resolve_run
from esper_core.setup.tasks import build_task, episode_seed, prepare_task
from esper_core.storage.policy_checkpoint import load_policy_checkpoint
from esper_core.tolaria.episode import run_episode


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _comparison_policies(against: Sequence[str], *, trained: str) -> tuple[str, ...]:
    """``against``, refused if it names a policy twice (its episodes would be run and reported
    twice) or names the checkpoint's own policy: that one is always evaluated, first, acting from
    the checkpoint, and a second policy of that name would need a checkpoint of its own (compare two
    checkpoints by evaluating each against the same baselines and seed)."""
    shown = ",".join(str(name) for name in against)  # policy names hold no comma
    names = option_names(shown, option="--against", noun="policy name", allow_empty=True, unique=True)
    if trained in names:
        raise ConfigError(f"--against {shown!r} names {trained!r}, the policy the checkpoint holds: it is always "
                          "evaluated, first, from --policy-checkpoint; leave it out of --against (to compare two "
                          f"{trained} checkpoints, evaluate each against the same policies and --seed)")
    return names


def evaluate_checkpoint(catalog: Catalog, checkpoint: Path, *, episodes: int, against: Sequence[str],
                        seed: int | None = None, epochs: int | None = None,
                        device: str | None = None, policy_options: Mapping[str, Any] | None = None,
                        on_progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Run the checkpoint's policy (acting with ``policy_options``) and each of ``against`` for
    ``episodes`` held-out episodes; ``on_progress(done, total, note)`` hears of every finished
    episode (and once before the first). ``against`` may not name a policy twice, nor the
    checkpoint's own policy (always evaluated, first)."""
    check_count(episodes, flag="--episodes")
    policy_options = dict(policy_options or {})
    if "checkpoint" in policy_options:
        raise ConfigError("--policy-option checkpoint: the checkpoint is --policy-checkpoint's argument")
    data = load_policy_checkpoint(checkpoint)
    trained = data["policy"]
    against = _comparison_policies(against, trained=trained)
    for name in against:
        catalog.policies.get(name)  # unknown names fail before any training starts
    config = RunConfig.from_dict(data["run_config"])
    changes: dict[str, Any] = {"policy": trained, "policy_options": {}, "telemetry": (), "out": None}
    if seed is not None:
        changes["seed"] = seed
    if epochs is not None:
        changes["epochs"] = epochs
    if device is not None:
        changes["device"] = device
    resolved = resolve_run(attrs.evolve(config, **changes), catalog)
    device, _, slot_names = prepare_task(resolved)
    seeds = [episode_seed(resolved.config.seed, env=0, episode=k, held_out=True) for k in range(episodes)]
    rows: list[dict[str, Any]] = []
    names = (trained, *against)
    report = on_progress or (lambda done, total, note: None)
    report(0, len(names) * episodes, "")
    for name in names:
        options = {**policy_options, "checkpoint": str(checkpoint)} if name == trained else {}
        policy = make_policy(resolved, name, catalog, slot_names, options)
        results = []
        for k, s in enumerate(seeds):
            results.append(run_episode(resolved, build_task(resolved, seed=s, device=device), policy, episode=k,
                                       emit=lambda event: None, policy_name=name, seed=s))
            report(len(rows) * episodes + k + 1, len(names) * episodes,
                   f"{name} episode {k + 1}/{episodes}: {results[-1].final_accuracy:.2f}%")
        accuracy = _mean_std([r.final_accuracy for r in results])
        tests = [r.test_accuracy for r in results]
        test = _mean_std([t for t in tests if t is not None]) if all(t is not None for t in tests) else (None, None)
        params = _mean_std([float(r.fossilized_params) for r in results])
        returns = _mean_std([r.total_reward for r in results])
        outcomes: dict[str | None, Counter[str]] = {}
        for r in results:
            for record in r.seeds:
                outcomes.setdefault(record.blueprint, Counter())[record.outcome] += 1
        rows.append({
            "policy": name,
            "episodes": episodes,
            "final_accuracy_mean": accuracy[0],
            "final_accuracy_std": accuracy[1],
            # The held-out test split, which neither the policy nor any gate saw (None: the task has none).
            "test_accuracy_mean": test[0],
            "test_accuracy_std": test[1],
            "test_accuracies": tests,
            "params_added_mean": params[0],
            "params_added_std": params[1],
            "return_mean": returns[0],
            "return_std": returns[1],
            "fossilized": sum(c.get("fossilized", 0) for c in outcomes.values()),
            "culled": sum(c.get("culled", 0) for c in outcomes.values()),
            "per_blueprint": {bp: dict(c) for bp, c in sorted(outcomes.items())},
            "final_accuracies": [r.final_accuracy for r in results],
            "returns": [r.total_reward for r in results],
        })
    # The trained policy against each other one on the same episodes: a paired comparison.
    mine = rows[0]["test_accuracies"]
    paired = {r["policy"]: paired_difference(mine, r["test_accuracies"]) for r in rows[1:]
              if rows[0]["test_accuracy_mean"] is not None and r["test_accuracy_mean"] is not None}
    return {"checkpoint": str(checkpoint), "task": resolved.task.name, "epochs": resolved.epochs,
            "seed": resolved.config.seed, "held_out_seeds": seeds, "policy_options": policy_options, "policies": rows,
            "paired_test_accuracy": paired}
