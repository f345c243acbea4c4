"""``esper collect``: record a behaviour policy's episodes as an offline dataset.

Episode ``k`` runs on seed ``episode_seed(run seed, env=0, episode=k)`` (its task — host
initial weights, data order — built from that seed) — the seeds PPO trains on, never the
held-out ones ``esper evaluate`` uses. Each finished episode becomes one shard, named by its
number; running the same command again records exactly the episode numbers below
``--episodes`` that the dataset lacks (the rest of an interrupted collection, or a shard deleted
because it was damaged), each on the seed it always has, so the dataset ends as an uninterrupted
collection would have left it; it rewrites no shard the dataset holds, and refuses a
directory recorded with any other setting (task, behaviour policy, action space, any option or
configuration value: see :func:`settings_difference`) or holding a file in ``episodes/`` that is
no shard (:meth:`EpisodeDataset.episodes`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
import torch

from esper_core.contracts.decisions import Op
from esper_core.contracts.observation import OBSERVATION_SCHEMA_VERSION
from esper_core.errors import ConfigError
from esper_core.options import check_count
from esper_core.sdk import (
    DATASET_FILE,
    Catalog,
    HostEpisode,
    Progress,
    ResolvedRun,
    RunDirLock,
    build_task,
    effective_config,
    episode_seed,
    first_difference,
    make_policy,
    prepare_task,
)
from esper_policies.encoding import ObservationBuilder, encode_masks
from esper_policies.offline.dataset import EpisodeDataset, describe_numbers

logger = structlog.get_logger(__name__)

#: ``[run]`` settings that may differ when a collection continues in an existing dataset: how
#: many episodes a config asks for (collect records ``--episodes``), where the output goes, where
#: and on how many threads it runs, and settings of ``esper run`` that collect does not use.
#: Every other recorded value must be the same.
MAY_DIFFER = frozenset({"episodes", "out", "device", "threads", "checkpoint_keep", "compare_baseline",
                        "baseline_cache"})
#: fields of dataset.json that describe the file, not the recording (EpisodeDataset checks them)
_FORMAT_FIELDS = ("format", "format_version")


def _comparable(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` as a continuation compares it: its fields as the table ``dataset``, beside
    every table of its run configuration less :data:`MAY_DIFFER`, as JSON holds them."""
    data = json.loads(json.dumps(dict(metadata), default=str))
    for name in _FORMAT_FIELDS:
        data.pop(name, None)
    config = data.pop("run_config", None)
    tables = dict(config) if isinstance(config, dict) else {"run_config": config}
    run = tables.get("run")
    if isinstance(run, dict):
        tables["run"] = {k: v for k, v in run.items() if k not in MAY_DIFFER}
    return {"dataset": data, **tables}


def settings_difference(recorded: Mapping[str, Any], now: Mapping[str, Any], resolved: ResolvedRun) -> str | None:
    """The first setting (by table, then key) in which a dataset's recorded metadata and this
    collection's differ, in words; None when a collection may continue the dataset. Options are
    compared by the values they take (``effective_config``), so giving a default that was
    left unset when the dataset was recorded changes nothing."""
    def read(metadata: Mapping[str, Any], recorded: bool) -> Mapping[str, Any]:
        config = metadata.get("run_config")
        if not isinstance(config, Mapping):
            return metadata
        return {**metadata, "run_config": effective_config(config, resolved, recorded=recorded)}

    return first_difference(_comparable(read(recorded, True)), _comparable(read(now, False)),
                            saved_in=f"its {DATASET_FILE}")


def _action(decision: Any, keys: tuple[str, ...]) -> list[int]:
    slot = decision.slot if decision.slot is not None else 0
    blueprint = keys.index(decision.blueprint) if decision.op is Op.GERMINATE else 0
    return [int(decision.op), slot, blueprint]


def record_episode(resolved: ResolvedRun, task: Any, policy: Any, *, episode: int, seed: int,
                   keys: tuple[str, ...], n_slots: int, policy_name: str) -> dict[str, Any]:
    """Run one episode under ``policy``; return its shard (see :mod:`.dataset`)."""
    builder = ObservationBuilder(1, n_slots)
    obs, masks, actions, rewards, terms = [], [], [], [], []
    policy.reset(episode=episode)
    with HostEpisode(resolved, task, episode=episode, seed=seed, emit=lambda event: None,
                     policy_name=policy_name) as env:
        step = env.start()
        while True:
            obs.append(builder.build([step.report])[0])
            masks.append(step.mask)
            decision = policy.decide(report=step.report, mask=step.mask)
            actions.append(_action(decision, keys))
            step = env.step(decision)
            rewards.append(step.reward)
            terms.append(dict(step.reward_terms))
            if step.done:
                break
        final = builder.peek_next([step.report])[0]
        result = env.result()
    encoded = encode_masks(masks)
    n = len(obs)
    names = sorted({name for t in terms for name in t})
    return {
        "obs": torch.stack(obs),
        "next_obs": torch.stack([*obs[1:], final]),
        "mask_ops": encoded.ops,
        "mask_slots": encoded.slots,
        "mask_blueprints": encoded.blueprints,
        "actions": torch.tensor(actions, dtype=torch.int64),
        "rewards": torch.tensor(rewards, dtype=torch.float32),
        "reward_terms": {name: torch.tensor([t.get(name, 0.0) for t in terms], dtype=torch.float32)
                         for name in names},
        "terminated": torch.tensor([False] * (n - 1) + [not step.truncated]),
        "truncated": torch.tensor([False] * (n - 1) + [step.truncated]),
        "episode": episode,
        "seed": seed,
        "final_accuracy": result.final_accuracy,
        "total_reward": result.total_reward,
    }


def collect(resolved: ResolvedRun, catalog: Catalog, out: Path, *, episodes: int) -> dict[str, Any]:
    """Record those of episodes ``0..episodes-1`` of ``resolved.policy`` that ``out`` lacks; the
    summary counts the episodes the dataset holds and those recorded now."""
    check_count(episodes, flag="--episodes")
    device, _, slot_names = prepare_task(resolved)
    keys = resolved.blueprint_keys
    metadata = {
        "task": resolved.task.name,
        "topology": resolved.task.topology,
        "policy": resolved.policy.name,
        "seed": resolved.config.seed,
        "epochs": resolved.epochs,
        "slot_names": list(slot_names),
        "blueprint_catalog": list(keys),
        "observation_size": ObservationBuilder(1, len(slot_names)).size,
        "observation_version": OBSERVATION_SCHEMA_VERSION,
        "run_config": resolved.to_toml_dict(),
    }
    policy = make_policy(resolved, resolved.policy.name, catalog, slot_names, dict(resolved.config.policy_options))
    if (out / DATASET_FILE).is_file():
        dataset = EpisodeDataset(out)
        difference = settings_difference(dataset.metadata, metadata, resolved)
        if difference is not None:
            raise ConfigError(f"{str(out)!r} already holds episodes recorded with other settings ({difference}); "
                              "continue it with the settings it was recorded with, or choose another --out")
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {str(out)!r} exists, is not empty and is not an episode dataset")
    else:
        dataset = EpisodeDataset.create(out, metadata)
    # One recorder per dataset: two would write the same episode numbers over each other.
    lock = RunDirLock.acquire(out)
    try:
        held = dataset.episodes()  # the same reading training makes; refuses a file that is no shard
        todo = [k for k in range(episodes) if k not in held]
        if held:
            logger.info("collect_resumed", dataset=str(out), complete_episodes=len(held),
                        recording=describe_numbers(todo))
        progress = Progress("collect", episodes, "episodes", done=episodes - len(todo))
        # On a terminal the progress line is the episode's line; its record stays at debug level.
        log = logger.debug if progress.enabled else logger.info
        for k in todo:
            seed = episode_seed(resolved.config.seed, env=0, episode=k)
            shard = record_episode(resolved, build_task(resolved, seed=seed, device=device), policy, episode=k,
                                   seed=seed, keys=keys, n_slots=len(slot_names), policy_name=resolved.policy.name)
            dataset.write_episode(k, shard)
            log("episode_recorded", episode=f"{k + 1}/{episodes}", transitions=shard["obs"].shape[0],
                final_accuracy=round(shard["final_accuracy"], 2), total_reward=round(shard["total_reward"], 3))
            progress.step(f"final accuracy {shard['final_accuracy']:.2f}%, return {shard['total_reward']:+.3f}")
        gap = dataset.gap_problem()
    finally:
        lock.release()
    if gap is not None:  # it holds episodes beyond --episodes, and lacks some below them
        logger.warning("dataset_incomplete", dataset=str(out), hint=f"training refuses it until it is filled: it {gap}")
    return {"dataset": str(out), "episodes": len(dataset), "recorded_now": len(todo),
            "policy": resolved.policy.name, "task": resolved.task.name}
