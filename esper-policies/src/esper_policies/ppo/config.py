"""PPO options, from the ``[policy]`` table (``--rounds``, ``--envs``, … set some of them).

Defaults follow the PPO paper (Schulman et al. 2017, arXiv:1707.06347) and CleanRL's ``ppo.py``
(Huang et al. 2022, "The 37 implementation details of PPO"), scaled to this problem: an episode
is a few dozen controller steps, so a round collects ``envs × episode_length`` transitions
(100 by default, against CleanRL's 512 for classic control) and the update runs more epochs
over them.
"""

from __future__ import annotations

from typing import Any

from attrs import field, frozen

from esper_core.errors import ConfigError
from esper_core.options import (
    MAX_EPISODES,
    MAX_EPOCHS,
    InvalidValue,
    int_at_least,
    is_bool,
    name_list,
    number_in,
    one_of,
    optional,
    usable_paths,
)
from esper_policies.ppo.network import SLOT_HEADS

#: The most environments a round runs (``--envs``, ``group_size``): each holds a host and its
#: task data at once, so a mistyped count would exhaust memory instead of being refused.
MAX_ENVS = 1024
#: The widest actor/critic layer (``hidden``); the network is tiny by design (64 by default).
MAX_HIDDEN = 4096
#: The most passes over one round's (or one dataset's) transitions (``update_epochs``,
#: ``bc_epochs``) and the most minibatches per pass.
MAX_UPDATE_EPOCHS = 10_000
MAX_MINIBATCHES = 1024

#: the factors of an action, in the order of the actor's heads
ACTION_FACTORS = ("op", "slot", "blueprint")


def _factor_list(option: str, value: Any) -> tuple[str, ...]:
    """Option ``option`` naming some of the action's factors (a list, or comma-separated), in the
    heads' order. A blank item (``'op,,slot'``, ``','``, a trailing comma) is refused, not dropped."""
    expected = f"a non-empty list of {', '.join(ACTION_FACTORS)} (comma-separated on the command line)"
    try:
        names = name_list(value, noun="action factor")
    except InvalidValue as exc:
        raise InvalidValue(option, value, expected, exc.got) from None
    unknown = [name for name in names if name not in ACTION_FACTORS]
    if unknown:
        raise InvalidValue(option, value, expected, f"an unknown factor {unknown[0]!r}")
    return tuple(f for f in ACTION_FACTORS if f in names)


def _bc_heads(value: Any) -> tuple[str, ...]:
    return _factor_list("bc_heads", value)


def _entropy_heads(value: Any) -> tuple[str, ...]:
    return _factor_list("entropy_heads", value)


def _datasets(value: Any) -> tuple[str, ...] | None:
    """``bc_dataset``: None for none, else one or more directories (a blank one, one named
    twice or one the OS cannot take, a NUL byte or an over-long name, is refused)."""
    if value is None:
        return None
    try:
        names = name_list(value, noun="dataset directory", unique=True)
    except InvalidValue as exc:
        raise InvalidValue("bc_dataset", value, "a directory or a list of distinct directories (comma-separated "
                                                "on the command line)", exc.got) from None
    return usable_paths("bc_dataset", names)


@frozen(kw_only=True)
class PPOConfig:
    """Everything ``esper run --policy ppo`` trains with."""

    rounds: int = field(default=20, validator=int_at_least(1, high=MAX_EPISODES))
    envs: int = field(default=4, validator=int_at_least(1, high=MAX_ENVS))
    #: epochs per training episode; None = the run's epochs. Shorter episodes are cut at a time
    #: limit (truncated, not terminal) and their last value is bootstrapped.
    episode_length: int | None = field(default=None, validator=optional(int_at_least(1, high=MAX_EPOCHS)))
    workers: bool = field(default=False, validator=is_bool)
    #: ``mlp``: two tanh layers; ``lstm``: one tanh layer, then an LSTM over the episode.
    trunk: str = field(default="mlp", validator=one_of("mlp", "lstm"))
    hidden: int = field(default=64, validator=int_at_least(4, high=MAX_HIDDEN))
    #: how the actor scores slots: ``linear`` (one weight set per slot) or ``shared`` (one scorer
    #: applied to every slot's block of the observation; esper_policies.ppo.network). Measured for
    #: IQL on the default task in docs/learned_controllers.md ("Three times the data, and one scorer
    #: for every slot"): no better than linear there (paired −0.09 to +0.05 of return, three
    #: seeds); not measured for PPO.
    slot_head: str = field(default="linear", validator=one_of(*SLOT_HEADS))
    #: initial logit of WAIT in the op head (the others start at 0): with K other allowed ops WAIT
    #: starts with probability e^b / (e^b + K). A uniform op choice offers CULL every epoch a seed
    #: lives, so an exploring policy rarely keeps a seed to fossilization and never sees what one
    #: is worth; a WAIT prior lets seeds live. 0 keeps the uniform start. Measured on ``micro``
    #: (sparse reward, 2.5, 30 rounds × 4 environments; docs/learned_micro_sparse_wait.md): seeds
    #: still rarely lived (117 germinated, 4 fossilized) and the greedy policy learned not to grow.
    initial_wait_logit: float = field(default=0.0, validator=number_in(-20.0, 20.0))
    lr: float = field(default=3e-4, validator=number_in(0.0, 1.0, low_open=True))
    #: linear learning-rate annealing to 0 over the rounds (CleanRL ``anneal_lr``).
    anneal_lr: bool = field(default=True, validator=is_bool)
    gamma: float = field(default=0.99, validator=number_in(0.0, 1.0))
    gae_lambda: float = field(default=0.95, validator=number_in(0.0, 1.0))
    #: ``gae``: GAE(γ, λ) against the critic. ``group``: environments run in groups of
    #: ``group_size`` sharing one episode seed, and each step's advantage is its return-to-go less
    #: the mean of the rest of its group's (see :mod:`esper_policies.ppo.group`); the critic is
    #: still trained, but not used for advantages.
    advantage: str = field(default="gae", validator=one_of("gae", "group"))
    #: environments per group under ``advantage = "group"``; must divide ``envs``.
    group_size: int = field(default=4, validator=int_at_least(2, high=MAX_ENVS))
    clip: float = field(default=0.2, validator=number_in(0.0, 1.0, low_open=True))
    #: clip the value update like the policy's (PPO2 / CleanRL ``clip_vloss``).
    clip_value: bool = field(default=True, validator=is_bool)
    value_coef: float = field(default=0.5, validator=number_in(0.0))
    #: entropy bonus, linearly scheduled from ``entropy_coef`` to ``entropy_coef_final``.
    entropy_coef: float = field(default=0.05, validator=number_in(0.0))
    entropy_coef_final: float = field(default=0.01, validator=number_in(0.0))
    #: the heads whose entropy the bonus rewards (comma-separated on the command line). With the
    #: lifecycle cloned (``bc_heads = op,slot``) a bonus on the op head pulls the cloned
    #: lifecycle back toward uniform, where CULL is offered every epoch a seed lives; ``blueprint``
    #: keeps the bonus on the head that is learned. Measured on ``micro`` within a parameter
    #: budget, the ten anti-patterns offered, five seeds (docs/learned_controllers.md,
    #: "Anti-patterns in the action space"): the sampled anti-pattern share over the last rounds
    #: was 0.185 pooled against 0.232 with the bonus on every head, lower in three seeds and higher
    #: in two, so the default stays every head.
    entropy_heads: tuple[str, ...] = field(default=ACTION_FACTORS, converter=_entropy_heads)
    update_epochs: int = field(default=8, validator=int_at_least(1, high=MAX_UPDATE_EPOCHS))
    minibatches: int = field(default=4, validator=int_at_least(1, high=MAX_MINIBATCHES))
    max_grad_norm: float = field(default=0.5, validator=number_in(0.0, low_open=True))
    #: stop the round's update epochs once the approximate KL exceeds this (None: never).
    target_kl: float | None = field(default=0.03, validator=optional(number_in(0.0, 10.0, low_open=True)))
    normalize_observations: bool = field(default=True, validator=is_bool)
    #: divide rewards by the running std of the discounted return (Engstrom et al. 2020).
    normalize_rewards: bool = field(default=True, validator=is_bool)
    #: behaviour cloning before the first round (see :mod:`esper_policies.ppo.bc`): `esper collect`
    #: dataset directories (comma-separated on the command line), None for none.
    bc_dataset: tuple[str, ...] | None = field(default=None, converter=_datasets)
    bc_epochs: int = field(default=100, validator=int_at_least(1, high=MAX_UPDATE_EPOCHS))
    bc_lr: float = field(default=1e-3, validator=number_in(0.0, 1.0, low_open=True))
    #: transitions per behaviour-cloning minibatch (whole episodes are kept together for the LSTM)
    bc_batch_size: int = field(default=64, validator=int_at_least(1))
    #: also fit the critic to the recorded discounted returns (only where the dataset's reward
    #: weights are the run's: under other weights those returns are not this run's values)
    bc_value: bool = field(default=True, validator=is_bool)
    #: the heads cloned (comma-separated on the command line): the others keep their near-uniform
    #: start, so PPO explores them while acting as the behaviour does in the cloned ones — e.g.
    #: ``op,slot`` clones the heuristic's lifecycle management and leaves the choice of blueprint,
    #: where a fixed order of preference is weakest, to be learned.
    bc_heads: tuple[str, ...] = field(default=ACTION_FACTORS, converter=_bc_heads)
    #: the weight of a penalty ``KL(π_cloned ‖ π)`` on the heads ``bc_heads`` names, at the states
    #: each round visits (:func:`esper_policies.ppo.update.anchor_kl`): the cloned heads stay near
    #: the behaviour while the others learn; 0 leaves them free. ``π_cloned`` is the policy as
    #: cloning left it, frozen with its observation statistics. A KL to a supervised policy during
    #: reinforcement learning, as in AlphaStar (Vinyals et al. 2019, Nature 575, 350–354).
    #: Measured on ``micro`` within a parameter budget, the ten anti-patterns offered,
    #: ``bc_heads = op,slot``, five seeds (docs/learned_controllers.md, "Anti-patterns in the action
    #: space"): with 1.0 the seeds culled per round fell instead of rising, and the sampled
    #: anti-pattern share of the last 5 rounds was 0.141 pooled after 30 rounds (0.232 without) and
    #: 0.043 after 60 (0.234 without), at most 0.09 in every seed; 0.1 gave 0.095 after 60, above
    #: 10 % in two seeds. 0 stays the default, since the anchor needs a dataset to clone.
    bc_anchor: float = field(default=0.0, validator=number_in(0.0))

    def __attrs_post_init__(self) -> None:
        if self.bc_anchor and not self.bc_dataset:
            raise ConfigError(f"bc_anchor = {self.bc_anchor} anchors the cloned heads to the cloned policy; "
                              "it needs bc_dataset (--bc-dataset)")
        if self.advantage == "group" and self.envs % self.group_size:
            raise ConfigError(f"advantage = 'group' runs environments in groups of group_size = {self.group_size}, "
                              f"which must divide envs = {self.envs}")

    def group_of(self, env: int) -> int:
        """The index whose episode seed environment ``env`` runs: its group's under ``group``
        advantages (the group shares one seed), else its own."""
        return env // self.group_size if self.advantage == "group" else env

    def entropy_coef_at(self, round_index: int) -> float:
        frac = round_index / max(1, self.rounds - 1)
        return self.entropy_coef + (self.entropy_coef_final - self.entropy_coef) * frac

    def lr_at(self, round_index: int) -> float:
        return self.lr * (1.0 - round_index / self.rounds) if self.anneal_lr else self.lr
