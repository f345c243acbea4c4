"""A trained actor-critic (PPO or IQL) acting inside a run (``--policy-checkpoint``) or an
evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from attrs import field, frozen, validators

from esper_core.contracts.decisions import ActionMask, Decision
from esper_core.contracts.protocols import PolicyContext
from esper_core.contracts.reports import EpochReport
from esper_core.errors import ConfigError
from esper_core.options import is_bool, number_in, parse_options
from esper_core.sdk import generator_seed
from esper_policies import checkpoint
from esper_policies.encoding import ObservationBuilder, encode_masks, to_decisions
from esper_policies.iql.config import IQLConfig
from esper_policies.iql.extraction import q_filtered_action
from esper_policies.iql.trainer import iql_training_options
from esper_policies.iql.update import TwinQ
from esper_policies.ppo.config import PPOConfig
from esper_policies.ppo.network import ActorCritic
from esper_policies.ppo.normalize import RunningMeanStd


@frozen(kw_only=True)
class InferenceOptions:
    """Options of a trained policy run from ``--policy-checkpoint``."""

    checkpoint: str = field(validator=validators.instance_of(str))
    #: sample actions from the policy instead of taking the most probable one.
    sample: bool = field(default=False, validator=is_bool)


@frozen(kw_only=True)
class IQLInferenceOptions(InferenceOptions):
    """Options of a trained IQL policy."""

    #: τ of discrete BCQ's rule (:mod:`esper_policies.iql.extraction`): act on the critic among
    #: the actions the actor gives at least τ times the probability of its most probable one;
    #: 1 acts with the actor alone.
    support_threshold: float = field(default=1.0, validator=number_in(0.0, 1.0, low_open=True))

    def __attrs_post_init__(self) -> None:
        if self.sample and self.support_threshold < 1.0:
            raise ValueError("sample = true draws from the actor alone; it cannot be combined with "
                             f"support_threshold = {self.support_threshold} (the critic's choice is greedy)")


class CheckpointPolicy:
    """Acts with a trained actor-critic: the most probable allowed action, or a sample; with a
    critic and a support threshold below 1, the critic's best action among those the actor
    supports."""

    def __init__(self, name: str, network: ActorCritic, obs_norm: RunningMeanStd | None, *,
                 blueprint_keys: tuple[str, ...], n_slots: int, sample: bool = False, seed: int = 0,
                 critic: TwinQ | None = None, support_threshold: float = 1.0) -> None:
        if support_threshold < 1.0 and critic is None:
            raise ValueError("a support threshold below 1 needs a critic")
        self.name = name
        self.network = network.eval()
        self.obs_norm = obs_norm
        self.blueprint_keys = blueprint_keys
        self.sample = sample
        self.seed = seed
        self.critic = critic
        self.support_threshold = support_threshold
        self._builder = ObservationBuilder(1, n_slots)
        self.reset(episode=0)

    @classmethod
    def load(cls, name: str, context: PolicyContext,
             options_class: type[InferenceOptions] = InferenceOptions) -> CheckpointPolicy:
        """Policy ``name`` from the checkpoint named by ``context.options["checkpoint"]``, acting
        with the options ``options_class`` reads from ``context.options``."""
        if "checkpoint" not in context.options:
            raise ConfigError(f"the {name} policy acts from a trained checkpoint: train one with "
                              f"`esper run --policy {name}`, then pass --policy-checkpoint RUN_DIR/policy.pt")
        options = parse_options(options_class, context.options, owner=f"policy {name!r}")
        threshold = options.support_threshold if isinstance(options, IQLInferenceOptions) else 1.0
        loaded = checkpoint.load(options.checkpoint, policy=name, blueprint_keys=context.blueprint_keys,
                                 slot_names=context.slot_names)
        if threshold < 1.0 and loaded.critic is None:
            raise ConfigError(f"policy checkpoint {options.checkpoint!r} holds no critic (it was written before IQL "
                              f"saved one): support_threshold = {threshold} needs it; train it again with "
                              "`esper run --policy iql`, or act with support_threshold = 1")
        return cls(name, loaded.network, loaded.obs_norm, blueprint_keys=context.blueprint_keys,
                   n_slots=context.n_slots, sample=options.sample, seed=context.seed, critic=loaded.critic,
                   support_threshold=threshold)


    def reset(self, *, episode: int) -> None:
        self._builder.reset()
        self._state = self.network.initial_state(1)
        self._generator = torch.Generator().manual_seed(generator_seed(self.seed, episode))

    @torch.no_grad()
    def decide(self, *, report: EpochReport, mask: ActionMask) -> Decision:
        obs = self._builder.build([report])
        if self.obs_norm is not None:
            obs = self.obs_norm.normalize(obs)
        features, self._state = self.network.features(obs, self._state)
        if self.critic is not None and self.support_threshold < 1.0:
            actions, probability, q = q_filtered_action(self.network, self.critic, obs, features, encode_masks([mask]),
                                                        threshold=self.support_threshold)
            return to_decisions(actions, probability, q, self.blueprint_keys, policy=self.name,
                                how=f"critic among the actor's choices, τ {self.support_threshold:g}")[0]
        out = self.network.heads(features, encode_masks([mask]), greedy=not self.sample, generator=self._generator)
        return to_decisions(out.actions, out.log_prob.exp(), out.value, self.blueprint_keys, policy=self.name,
                            how="sampled" if self.sample else "greedy")[0]


def read_ppo_options(*, options: Mapping[str, Any]) -> PPOConfig | InferenceOptions:
    """``PolicySpec.read_options`` of ``ppo``: the acting options when the table names a
    ``checkpoint``, else the trainer's."""
    if "checkpoint" in options:
        return parse_options(InferenceOptions, options, owner="policy 'ppo'")
    return parse_options(PPOConfig, options, owner="policy 'ppo'")


def read_iql_options(*, options: Mapping[str, Any]) -> IQLConfig | IQLInferenceOptions:
    """``PolicySpec.read_options`` of ``iql``, as :func:`read_ppo_options`."""
    if "checkpoint" in options:
        return parse_options(IQLInferenceOptions, options, owner="policy 'iql'")
    return iql_training_options(options)


def ppo_from_context(*, context: PolicyContext) -> CheckpointPolicy:
    return CheckpointPolicy.load("ppo", context)


def iql_from_context(*, context: PolicyContext) -> CheckpointPolicy:
    return CheckpointPolicy.load("iql", context, IQLInferenceOptions)
