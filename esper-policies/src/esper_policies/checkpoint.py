"""The payload of a learned actor-critic inside the shared policy-checkpoint format
(``esper_core.tolaria.policy_checkpoint``), written by PPO and IQL alike.

The payload holds everything needed to act (network shape and weights, observation statistics)
and, under ``training``, whatever the learner needs to continue exactly where it stopped (for
PPO: optimizer, reward scaler, sampling generator, rounds done, per-round history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from esper_core.contracts.observation import OBSERVATION_SCHEMA_VERSION
from esper_core.errors import ConfigError
from esper_core.tolaria.policy_checkpoint import check_compatible, load_policy_checkpoint, save_policy_checkpoint
from esper_policies.ppo.network import ActorCritic
from esper_policies.ppo.normalize import RunningMeanStd

PAYLOAD_VERSION = 1


def architecture(network: ActorCritic, obs_size: int) -> dict[str, Any]:
    return {"trunk": network.trunk_kind, "hidden": network.hidden, "obs_size": obs_size,
            "n_slots": network.n_slots, "n_blueprints": network.n_blueprints}


def build_network(arch: Mapping[str, Any]) -> ActorCritic:
    return ActorCritic(arch["obs_size"], arch["n_slots"], arch["n_blueprints"], trunk=arch["trunk"],
                       hidden=arch["hidden"])


def save(path: Path, *, policy: str, run_config: Mapping[str, Any], blueprint_keys: Sequence[str],
         slot_names: Sequence[str], network: ActorCritic, obs_size: int, obs_norm: RunningMeanStd | None,
         training: Mapping[str, Any]) -> None:
    save_policy_checkpoint(
        path, policy=policy, run_config=run_config, blueprint_keys=blueprint_keys, slot_names=slot_names,
        observation_version=OBSERVATION_SCHEMA_VERSION,
        payload={
            "payload_version": PAYLOAD_VERSION,
            "architecture": architecture(network, obs_size),
            "state_dict": network.state_dict(),
            "obs_norm": None if obs_norm is None else obs_norm.state_dict(),
            "training": dict(training),
        },
    )


def load(path: Path | str, *, policy: str, blueprint_keys: Sequence[str], slot_names: Sequence[str]
         ) -> tuple[ActorCritic, RunningMeanStd | None, dict[str, Any]]:
    """The network (in eval mode), observation statistics and training state of a checkpoint
    written by ``policy``."""
    data = load_policy_checkpoint(path)
    if data["policy"] != policy:
        raise ConfigError(f"policy checkpoint {str(path)!r} was written by policy {data['policy']!r}, "
                          f"not {policy!r}")
    check_compatible(data, path=path, blueprint_keys=blueprint_keys, slot_names=slot_names,
                     observation_version=OBSERVATION_SCHEMA_VERSION)
    payload = data["payload"]
    if payload.get("payload_version") != PAYLOAD_VERSION:
        raise ConfigError(f"policy checkpoint {str(path)!r} has payload version "
                          f"{payload.get('payload_version')!r}; this version reads {PAYLOAD_VERSION}")
    network = build_network(payload["architecture"])
    network.load_state_dict(payload["state_dict"])
    network.eval()
    obs_norm = None
    if payload["obs_norm"] is not None:
        obs_norm = RunningMeanStd((payload["architecture"]["obs_size"],))
        obs_norm.load_state_dict(payload["obs_norm"])
    return network, obs_norm, dict(payload["training"])
