"""A trained actor-critic (PPO or IQL) acting inside a run (``--policy-checkpoint``) or an
evaluation."""

from __future__ import annotations

import torch
from attrs import field, frozen, validators

from esper_core.contracts.decisions import ActionMask, Decision
from esper_core.contracts.protocols import PolicyContext
from esper_core.contracts.reports import EpochReport
from esper_core.errors import ConfigError
from esper_core.options import is_bool, parse_options
from esper_policies import checkpoint
from esper_policies.encoding import ObservationBuilder, encode_masks, to_decisions
from esper_policies.ppo.network import ActorCritic
from esper_policies.ppo.normalize import RunningMeanStd


@frozen(kw_only=True)
class InferenceOptions:
    """Options of a trained policy run from ``--policy-checkpoint``."""

    checkpoint: str = field(validator=validators.instance_of(str))
    #: sample actions from the policy instead of taking the most probable one.
    sample: bool = field(default=False, validator=is_bool)


class CheckpointPolicy:
    """Acts with a trained actor-critic: the most probable allowed action, or a sample."""

    def __init__(self, name: str, network: ActorCritic, obs_norm: RunningMeanStd | None, *,
                 blueprint_keys: tuple[str, ...], n_slots: int, sample: bool = False, seed: int = 0) -> None:
        self.name = name
        self.network = network.eval()
        self.obs_norm = obs_norm
        self.blueprint_keys = blueprint_keys
        self.sample = sample
        self.seed = seed
        self._builder = ObservationBuilder(1, n_slots)
        self.reset(episode=0)

    @classmethod
    def load(cls, name: str, context: PolicyContext) -> CheckpointPolicy:
        """Policy ``name`` from the checkpoint named by ``context.options["checkpoint"]``."""
        if "checkpoint" not in context.options:
            raise ConfigError(f"the {name} policy acts from a trained checkpoint: train one with "
                              f"`esper run --policy {name}`, then pass --policy-checkpoint RUN_DIR/policy.pt")
        options = parse_options(InferenceOptions, context.options, owner=f"policy {name!r}")
        network, obs_norm, _ = checkpoint.load(options.checkpoint, policy=name,
                                               blueprint_keys=context.blueprint_keys, slot_names=context.slot_names)
        return cls(name, network, obs_norm, blueprint_keys=context.blueprint_keys, n_slots=context.n_slots,
                   sample=options.sample, seed=context.seed)


    def reset(self, *, episode: int) -> None:
        self._builder.reset()
        self._state = self.network.initial_state(1)
        self._generator = torch.Generator().manual_seed(self.seed * 100_003 + episode)

    @torch.no_grad()
    def decide(self, *, report: EpochReport, mask: ActionMask) -> Decision:
        obs = self._builder.build([report])
        if self.obs_norm is not None:
            obs = self.obs_norm.normalize(obs)
        features, self._state = self.network.features(obs, self._state)
        out = self.network.heads(features, encode_masks([mask]), greedy=not self.sample, generator=self._generator)
        return to_decisions(out.actions, out.log_prob.exp(), out.value, self.blueprint_keys, policy=self.name,
                            how="sampled" if self.sample else "greedy")[0]


def ppo_from_context(*, context: PolicyContext) -> CheckpointPolicy:
    return CheckpointPolicy.load("ppo", context)


def iql_from_context(*, context: PolicyContext) -> CheckpointPolicy:
    return CheckpointPolicy.load("iql", context)
