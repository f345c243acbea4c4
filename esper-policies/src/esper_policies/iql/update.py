"""Implicit Q-learning (Kostrikov, Nair and Levine 2021, arXiv:2110.06169).

Three losses per minibatch of recorded transitions ``(s, a, r, s', terminated)``:

* **V by expectile regression**: ``L_V = E[|τ − 1(u < 0)| · u²]`` with
  ``u = min(Q̄₁, Q̄₂)(s, a) − V(s)`` and ``Q̄`` the target networks. With τ > 0.5 V approaches
  an upper expectile of Q over the *dataset's* actions — a soft maximum that never queries an
  action the data does not contain, which is what keeps IQL from over-estimating unseen actions.
* **Q by TD learning**: ``L_Q = E[(r + γ·(1 − terminated)·V(s') − Q_i(s, a))²]`` for both Q
  networks; the target Q̄ follows Q by Polyak averaging, ``Q̄ ← (1 − ρ)·Q̄ + ρ·Q``.
* **Policy by advantage-weighted regression**: ``L_π = −E[min(exp(β·(Q̄(s,a) − V(s))), w_max) ·
  log π(a | s)]``; ``log π`` is the masked, factored log-probability of the recorded action, so
  the actor never puts probability on an action the mask forbade. That is
  ``advantage_weights = "exponential"``; the default, ``"binary"``, weights by
  ``1(Q̄(s,a) − V(s) > 0)`` instead, the indicator of Critic Regularized Regression
  (Wang et al. 2020, arXiv:2006.15134): each step
  clones only the recorded actions the critic rates above V. Where every recorded state holds
  one action (the default task), those advantages are noise around zero and the actor still
  ends up fitting nearly every recorded action (docs/learned_controllers.md).

Q scores a factored action from one-hot codes of op, slot (zero for WAIT) and blueprint (zero
unless GERMINATE).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from esper_core.contracts.decisions import Op
from esper_core.sdk import adam
from esper_policies.encoding import N_OPS
from esper_policies.offline.dataset import Batch
from esper_policies.ppo.network import ActorCritic

ADVANTAGE_WEIGHTS = ("exponential", "binary")


def action_code(actions: Tensor, n_slots: int, n_blueprints: int) -> Tensor:
    """``(N, 3)`` indices → ``(N, n_ops + n_slots + n_blueprints)`` one-hot code."""
    op = nn.functional.one_hot(actions[:, 0], N_OPS).float()
    has_slot = (actions[:, 0] != Op.WAIT).float().unsqueeze(1)
    has_bp = (actions[:, 0] == Op.GERMINATE).float().unsqueeze(1)
    slot = nn.functional.one_hot(actions[:, 1], n_slots).float() * has_slot
    bp = nn.functional.one_hot(actions[:, 2], n_blueprints).float() * has_bp
    return torch.cat([op, slot, bp], dim=1)


class TwinQ(nn.Module):
    """Two independent ``Q(s, a)`` MLPs (clipped double Q, Fujimoto et al. 2018)."""

    def __init__(self, obs_size: int, n_slots: int, n_blueprints: int, hidden: int) -> None:
        super().__init__()
        self.n_slots, self.n_blueprints, self.hidden = n_slots, n_blueprints, hidden
        size = obs_size + N_OPS + n_slots + n_blueprints
        self.q1, self.q2 = (nn.Sequential(nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                          nn.Linear(hidden, 1)) for _ in range(2))

    def forward(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([obs, action_code(actions, self.n_slots, self.n_blueprints)], dim=1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class IQLLearner:
    """The networks, optimisers and one training step.

    ``actor_dropout`` (on the trunk's output, in the policy loss only) and ``actor_weight_decay``
    (of the parameters the policy loss trains: the policy heads and the trunk it shares with V)
    regularise the actor. The recorded states are nearly all distinct, so an unregularised actor
    can fit every recorded action, the random policy's included, whatever its advantage weight:
    AWR's weights only rank actions taken *in the same state*. Implementations of IQL use actor
    dropout (0.1) on small-data tasks such as Adroit. On the default task neither option changed
    the actor's agreement with the heuristic on held-out episodes (docs/learned_controllers.md).
    ``advantage_weights = "binary"`` removes the down-weighted actions from each step's policy
    loss instead of fitting them with a smaller weight; on the default task it did not stop the fit.
    """

    def __init__(self, actor: ActorCritic, q: TwinQ, *, lr: float, gamma: float, expectile: float, beta: float,
                 polyak: float, max_weight: float, actor_dropout: float = 0.0, actor_weight_decay: float = 0.0,
                 advantage_weights: str = "exponential") -> None:
        if advantage_weights not in ADVANTAGE_WEIGHTS:
            raise ValueError(f"advantage_weights must be one of {ADVANTAGE_WEIGHTS}, got {advantage_weights!r}")
        self.actor, self.q = actor, q
        self.q_target = copy.deepcopy(q).requires_grad_(False)
        self.gamma, self.expectile, self.beta, self.polyak, self.max_weight = gamma, expectile, beta, polyak, max_weight
        self.actor_dropout, self.advantage_weights = actor_dropout, advantage_weights
        value_params = list(actor.value_head.parameters())
        value_ids = {id(p) for p in value_params}
        # V shares the actor's trunk: the value loss trains trunk and value head, the policy
        # loss trunk and policy heads, as in PPO's shared actor-critic.
        self.v_opt = adam(value_params + list(actor.trunk.parameters()), lr=lr)
        self.pi_opt = adam([p for p in actor.parameters() if id(p) not in value_ids], lr=lr,
                           decoupled=actor_weight_decay > 0, weight_decay=actor_weight_decay)
        self.q_opt = adam(q.parameters(), lr=lr)

    def _dropped(self, features: Tensor) -> Tensor:
        # Dropout on the trunk's output as the policy heads read it; the shared slot scorer's
        # observation blocks that travel after it (ActorCritic.features) are left whole.
        if not self.actor_dropout:
            return features
        hidden = self.actor.hidden
        trunk = nn.functional.dropout(features[..., :hidden], p=self.actor_dropout, training=True)
        return torch.cat([trunk, features[..., hidden:]], dim=-1)

    def policy_weights(self, advantage: Tensor) -> Tensor:
        """Each recorded action's weight in the policy loss, from its advantage ``Q̄(s, a) − V(s)``."""
        if self.advantage_weights == "binary":
            return (advantage > 0).float()
        return torch.exp(self.beta * advantage).clamp(max=self.max_weight)

    def step(self, batch: Batch) -> dict[str, float]:
        with torch.no_grad():
            q_target = torch.min(*self.q_target(batch.obs, batch.actions))
            next_features, _ = self.actor.features(batch.next_obs)
            next_v = self.actor.value(next_features)
            target = batch.rewards + self.gamma * (~batch.terminated).float() * next_v

        features, _ = self.actor.features(batch.obs)
        v = self.actor.value(features)
        u = q_target - v
        weight = torch.where(u < 0, 1 - self.expectile, self.expectile)
        v_loss = (weight * u.square()).mean()
        self.v_opt.zero_grad(set_to_none=True)
        v_loss.backward()
        self.v_opt.step()

        q1, q2 = self.q(batch.obs, batch.actions)
        q_loss = (q1 - target).square().mean() + (q2 - target).square().mean()
        self.q_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.q_opt.step()

        features, _ = self.actor.features(batch.obs)
        with torch.no_grad():
            advantage = q_target - self.actor.value(features)
            awr = self.policy_weights(advantage)
        log_prob = self.actor.heads(self._dropped(features), batch.masks, batch.actions).log_prob
        pi_loss = -(awr * log_prob).mean()
        self.pi_opt.zero_grad(set_to_none=True)
        pi_loss.backward()
        self.pi_opt.step()

        with torch.no_grad():
            for target_p, p in zip(self.q_target.parameters(), self.q.parameters(), strict=True):
                target_p.lerp_(p, self.polyak)
        return {"v_loss": float(v_loss.detach()), "q_loss": float(q_loss.detach()), "pi_loss": float(pi_loss.detach()),
                "mean_v": float(v.detach().mean()), "mean_advantage": float(advantage.mean()),
                "mean_weight": float(awr.mean())}
