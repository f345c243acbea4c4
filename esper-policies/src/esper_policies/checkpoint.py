"""The payload of a learned actor-critic inside the shared policy-checkpoint format
(``esper_core.storage.policy_checkpoint``), written by PPO and IQL alike.

The payload holds everything needed to act (network shape and weights, observation statistics;
for IQL also its critic, the twin Q) and, under ``training``, whatever the learner needs to
continue exactly where it stopped (for PPO: optimizer, reward scaler, sampling generator, rounds
done, per-round history).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from esper_core.contracts.observation import OBSERVATION_SCHEMA_VERSION
from esper_core.errors import ConfigError
from esper_core.sdk import check_compatible, load_policy_checkpoint, save_policy_checkpoint
from esper_policies.encoding import ObservationBuilder
from esper_policies.iql.update import TwinQ
from esper_policies.ppo.network import SLOT_HEADS, ActorCritic
from esper_policies.ppo.normalize import RunningMeanStd

PAYLOAD_VERSION = 1
#: The widest trunk a checkpoint may ask for: far above any trained here (64 by default), far
#: below what would exhaust memory (a 16384-wide LSTM trunk is about 2 GiB of weights).
MAX_HIDDEN = 16384
TRUNKS = ("mlp", "lstm")


def architecture(network: ActorCritic, obs_size: int) -> dict[str, Any]:
    return {"trunk": network.trunk_kind, "hidden": network.hidden, "obs_size": obs_size,
            "n_slots": network.n_slots, "n_blueprints": network.n_blueprints, "slot_head": network.slot_head_kind}


def build_network(arch: Mapping[str, Any]) -> ActorCritic:
    return ActorCritic(arch["obs_size"], arch["n_slots"], arch["n_blueprints"], trunk=arch["trunk"],
                       hidden=arch["hidden"], slot_head=arch["slot_head"])


@attrs.frozen
class LoadedPolicy:
    """What a checkpoint holds: the actor-critic (in eval mode), the observation statistics (None
    when not normalising), the learner's training state, and IQL's critic (None when the
    checkpoint has none: PPO's, or IQL's written before the critic was saved)."""

    network: ActorCritic
    obs_norm: RunningMeanStd | None
    training: dict[str, Any]
    critic: TwinQ | None
    #: the configuration of the run that wrote the checkpoint, as its tables
    run_config: dict[str, Any] = attrs.field(factory=dict)


def build_critic(arch: Mapping[str, Any], hidden: int) -> TwinQ:
    return TwinQ(arch["obs_size"], arch["n_slots"], arch["n_blueprints"], hidden)


def save(path: Path, *, policy: str, run_config: Mapping[str, Any], blueprint_keys: Sequence[str],
         slot_names: Sequence[str], network: ActorCritic, obs_size: int, obs_norm: RunningMeanStd | None,
         training: Mapping[str, Any], critic: TwinQ | None = None) -> None:
    save_policy_checkpoint(
        path, policy=policy, run_config=run_config, blueprint_keys=blueprint_keys, slot_names=slot_names,
        observation_version=OBSERVATION_SCHEMA_VERSION,
        payload={
            "payload_version": PAYLOAD_VERSION,
            "architecture": architecture(network, obs_size),
            "state_dict": network.state_dict(),
            "obs_norm": None if obs_norm is None else obs_norm.state_dict(),
            "training": dict(training),
            "critic": None if critic is None else {"hidden": critic.hidden, "state_dict": critic.state_dict()},
        },
    )


def load(path: Path | str, *, policy: str, blueprint_keys: Sequence[str], slot_names: Sequence[str]
         ) -> LoadedPolicy:
    """Everything a checkpoint written by ``policy`` holds, checked before it is built."""
    data = load_policy_checkpoint(path)
    if data["policy"] != policy:
        raise ConfigError(f"policy checkpoint {str(path)!r} was written by policy {data['policy']!r}, "
                          f"not {policy!r}")
    check_compatible(data, path=path, blueprint_keys=blueprint_keys, slot_names=slot_names,
                     observation_version=OBSERVATION_SCHEMA_VERSION)
    payload = data["payload"]
    if not isinstance(payload, Mapping) or payload.get("payload_version") != PAYLOAD_VERSION:
        version = payload.get("payload_version") if isinstance(payload, Mapping) else None
        raise ConfigError(f"policy checkpoint {str(path)!r} has payload version "
                          f"{version!r}; this version reads {PAYLOAD_VERSION}")
    arch = _checked_architecture(payload.get("architecture"), path=path, n_slots=len(slot_names),
                                 n_blueprints=len(blueprint_keys))
    state = _checked_state(payload.get("state_dict"), lambda: build_network(arch), path=path)
    network = build_network(arch)
    network.load_state_dict(state)
    network.eval()
    obs_norm = None
    if payload.get("obs_norm") is not None:
        obs_norm = RunningMeanStd((arch["obs_size"],))
        obs_norm.load_state_dict(_checked_obs_norm(payload["obs_norm"], arch["obs_size"], path=path))
    training = payload.get("training")
    if not isinstance(training, Mapping):
        raise ConfigError(f"policy checkpoint {str(path)!r} is damaged: its training state is not a table")
    return LoadedPolicy(network=network, obs_norm=obs_norm, training=dict(training),
                        run_config=dict(data["run_config"]),
                        critic=_checked_critic(payload.get("critic"), arch, path=path))


def _checked_critic(critic: Any, arch: Mapping[str, Any], *, path: Path | str) -> TwinQ | None:
    if critic is None:
        return None
    where = f"policy checkpoint {str(path)!r}"
    if not isinstance(critic, Mapping) or set(critic) != {"hidden", "state_dict"}:
        raise ConfigError(f"{where} is damaged: its critic is not a table of hidden and state_dict")
    hidden = critic["hidden"]
    if type(hidden) is not int or not 1 <= hidden <= MAX_HIDDEN:
        raise ConfigError(f"{where} asks for a critic {hidden!r} units wide; 1 to {MAX_HIDDEN} are loaded")
    state = _checked_state(critic["state_dict"], lambda: build_critic(arch, hidden), path=path, what="critic ")
    q = build_critic(arch, hidden)
    q.load_state_dict(state)
    return q.eval()


def _checked_architecture(arch: Any, *, path: Path | str, n_slots: int, n_blueprints: int) -> dict[str, Any]:
    """The network's shape, refused unless it is the one this run's action space and observation
    need (and of a sane width) — checked before anything is allocated."""
    where = f"policy checkpoint {str(path)!r}"
    keys = {"trunk", "hidden", "obs_size", "n_slots", "n_blueprints"}
    # slot_head came later: a checkpoint written before it has the linear head, the only one then.
    if not isinstance(arch, Mapping) or set(arch) - {"slot_head"} != keys:
        raise ConfigError(f"{where} is damaged: its architecture is not a table of "
                          f"{', '.join(sorted(keys))} (and slot_head)")
    arch = {"slot_head": "linear", **arch}
    if arch["trunk"] not in TRUNKS:
        raise ConfigError(f"{where} asks for trunk {arch['trunk']!r}; known: {', '.join(TRUNKS)}")
    if arch["slot_head"] not in SLOT_HEADS:
        raise ConfigError(f"{where} asks for slot head {arch['slot_head']!r}; known: {', '.join(SLOT_HEADS)}")
    for key in keys - {"trunk"}:
        if type(arch[key]) is not int:
            raise ConfigError(f"{where} is damaged: architecture {key} is {type(arch[key]).__name__}, not an integer")
    if not 1 <= arch["hidden"] <= MAX_HIDDEN:
        raise ConfigError(f"{where} asks for a trunk {arch['hidden']} units wide; at most {MAX_HIDDEN} are loaded")
    expected = {"n_slots": n_slots, "n_blueprints": n_blueprints,
                "obs_size": ObservationBuilder(1, n_slots).size}
    for key, value in expected.items():
        if arch[key] != value:
            raise ConfigError(f"{where} is damaged: architecture {key} = {arch[key]}, but its slots and "
                              f"blueprints make {value}")
    return dict(arch)


def _checked_state(state: Any, build: Callable[[], nn.Module], *, path: Path | str,
                   what: str = "") -> dict[str, torch.Tensor]:
    """The weights of the module ``build`` makes, refused unless every tensor it has is there with
    its shape and finite: a network with NaN weights is not a policy."""
    where = f"policy checkpoint {str(path)!r}"
    with torch.device("meta"):  # shapes only: nothing allocated, nothing initialised
        shapes = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    if not isinstance(state, Mapping) or set(state) != set(shapes):
        raise ConfigError(f"{where} is damaged: its {what}weights do not match its architecture")
    for key, shape in shapes.items():
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape:
            raise ConfigError(f"{where} is damaged: {what}weight {key} should have shape {shape}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ConfigError(f"{where} has non-finite {what}weights ({key}); refusing to act with it")
    return dict(state)


def _checked_obs_norm(state: Any, obs_size: int, *, path: Path | str) -> dict[str, Any]:
    where = f"policy checkpoint {str(path)!r}"
    if not isinstance(state, Mapping) or set(state) != {"mean", "var", "count"}:
        raise ConfigError(f"{where} is damaged: its observation statistics are not mean, var and count")
    for key in ("mean", "var"):
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != (obs_size,) \
                or not bool(torch.isfinite(tensor).all()):
            raise ConfigError(f"{where} is damaged: observation {key} is not {obs_size} finite numbers")
    if bool((state["var"] < 0).any()):
        raise ConfigError(f"{where} is damaged: an observation variance is negative")
    count = state["count"]
    if isinstance(count, bool) or not isinstance(count, int | float) or not math.isfinite(count) or count < 0:
        raise ConfigError(f"{where} is damaged: observation count {count!r} is not a non-negative number")
    return dict(state)
