"""IQL options, from the ``[policy]`` table (``--dataset`` sets ``dataset``).

Defaults from Kostrikov, Nair and Levine 2021 ("Offline Reinforcement Learning with Implicit
Q-Learning", arXiv:2110.06169): expectile τ = 0.7, inverse temperature β = 3.0, γ = 0.99,
Polyak rate 0.005, advantage weights clipped at 100, learning rate 3e-4.
"""

from __future__ import annotations

from typing import Any

from attrs import field, frozen

from esper_core.options import InvalidValue, int_at_least, is_bool, name_list, number_in, one_of, usable_paths
from esper_policies.iql.update import ADVANTAGE_WEIGHTS
from esper_policies.ppo.network import SLOT_HEADS


def _dataset_list(value: Any) -> tuple[str, ...]:
    """``dataset``: one or more directories; a blank one (``'a,,b'``, a trailing comma), one
    named twice or one the OS cannot take (a NUL byte, an over-long name) is refused."""
    try:
        names = name_list(value, noun="dataset directory", unique=True)
    except InvalidValue as exc:
        raise InvalidValue("dataset", value, "a directory or a list of distinct directories (comma-separated "
                                             "on the command line)", exc.got) from None
    return usable_paths("dataset", names)


@frozen(kw_only=True)
class IQLConfig:
    #: one or more dataset directories from `esper collect` (comma-separated on the command line)
    dataset: tuple[str, ...] = field(converter=_dataset_list)
    #: gradient steps (each one minibatch of each loss). V and Q are learned by bootstrapping
    #: through a target network that moves 0.5 % per step, so over an episode of many steps their
    #: values take many thousands of steps to reach the data's returns. On the default task (25 epochs) after
    #: 3,000 steps V averaged 2.34 over the training states against a recorded discounted
    #: return-to-go of 4.36; after 20,000 it averaged 4.41 (docs/iql_agreement_shapes.md).
    steps: int = field(default=20000, validator=int_at_least(1))
    batch_size: int = field(default=256, validator=int_at_least(1))
    lr: float = field(default=3e-4, validator=number_in(0.0, 1.0, low_open=True))
    gamma: float = field(default=0.99, validator=number_in(0.0, 1.0))
    expectile: float = field(default=0.7, validator=number_in(0.5, 1.0, low_open=False))
    beta: float = field(default=3.0, validator=number_in(0.0))
    polyak: float = field(default=0.005, validator=number_in(0.0, 1.0, low_open=True))
    max_weight: float = field(default=100.0, validator=number_in(0.0, low_open=True))
    hidden: int = field(default=64, validator=int_at_least(4))
    #: dropout on the trunk's output in the policy loss, and decoupled weight decay (AdamW) of what
    #: the policy loss trains (esper_policies.iql.update.IQLLearner). On the default task neither
    #: changed the actor's agreement with the heuristic on held-out episodes (docs/learned_controllers.md,
    #: "The actor fits the random episodes state by state"), so both are off by default.
    actor_dropout: float = field(default=0.0, validator=number_in(0.0, 1.0, high_open=True))
    actor_weight_decay: float = field(default=0.0, validator=number_in(0.0))
    #: how the policy loss weights a recorded action by its advantage A = Q̄(s, a) − V(s):
    #: ``exponential`` (AWR, min(exp(β·A), max_weight)) or ``binary`` (1(A > 0), CRR's indicator;
    #: ``beta`` and ``max_weight`` then do not apply). esper_policies.iql.update. Binary is the
    #: default: on the default task, over 60 held-out episodes per training seed, it returned
    #: +0.13, +0.06 and +0.12 over the heuristic against exponential's +0.02, −0.03 and −0.09
    #: (docs/iql_binary_weights_pooled.md), and on the CI learning test's recipe (``micro``, five
    #: seeds) its mean return was at or above exponential's in every seed, closing 0.97–1.05 of the
    #: random → heuristic gap against 0.96–1.02 (docs/iql_learning_test_margin_binary.md,
    #: _exponential.md; docs/learned_controllers.md, "A third set of held-out episodes").
    advantage_weights: str = field(default="binary", validator=one_of(*ADVANTAGE_WEIGHTS))
    #: how the actor scores slots: ``linear`` (one weight set per slot) or ``shared`` (one scorer
    #: applied to every slot's block of the observation; esper_policies.ppo.network). Measured on the
    #: default task in docs/learned_controllers.md ("Three times the data, and one scorer for every
    #: slot"): no better than linear there (paired −0.09 to +0.05 of return, three seeds).
    slot_head: str = field(default="linear", validator=one_of(*SLOT_HEADS))
    normalize_observations: bool = field(default=True, validator=is_bool)
    #: log and record the losses every this many steps
    log_every: int = field(default=250, validator=int_at_least(1))
