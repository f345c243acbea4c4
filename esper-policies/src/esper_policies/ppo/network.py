"""The actor-critic: a shared trunk, three masked categorical heads and a value head.

The action ``(op, slot, blueprint)`` is sampled autoregressively from one set of features:
``op ~ π(op | s)``; the slot head gives logits for every (op, slot) pair and the row of the
drawn op is used, so *which* slot depends on *what* is done; the blueprint head gives logits for
every (slot, blueprint) pair and the drawn slot's row is used. Heads that do not apply (the slot
of WAIT, the blueprint of anything but GERMINATE) add nothing to the log-probability or the
entropy. Disallowed actions get a logit of ``finfo.min``: probability exactly 0, yet no
``-inf`` arithmetic, so a fully masked row (never sampled from) cannot produce NaN.

``slot_head`` chooses how the slot logits are made. ``linear`` (the default): one linear map
from the trunk's features to every (op, slot) logit, so each slot has its own weights and
preferring one slot over another by their features must be learnt separately for every pair.
``shared``: one scorer for every slot, ``score(op, k) = w_op · [trunk features, slot k's block
of the observation, one-hot k] + b_op``, the way pointer networks and entity-based RL policies
score a variable set of candidates (Vinyals et al., 2015, "Pointer Networks"; Zambaldi et al.,
2019, "Deep reinforcement learning with relational inductive biases"): a rule such as "the
larger contribution first" is one weight on the contribution feature, the same for every
slot, learnt from every step that offers the op in more than one slot; the one-hot keeps a
per-slot preference possible. The slot blocks are taken from the (normalised) observation, so
``features`` carries them beside the trunk's output and the other heads use the trunk's part.
Measured: cloning "the larger contribution first" from 192 choices among 4 slots, the shared
scorer picks the rule's slot on 0.93 of fresh states and the linear head on 0.63 (a test in
tests/test_ppo_parts.py); IQL on the default task, three training seeds, returned no more with it
(paired −0.09 to +0.05; docs/learned_controllers.md), so ``linear`` stays the default.

Initialisation follows CleanRL / the "37 implementation details": orthogonal weights, gain √2
in the trunk, 0.01 for the policy heads (near-uniform initial policy), 1 for the value head;
zero biases, except WAIT's in the op head when ``initial_wait_logit`` is set.
"""

from __future__ import annotations

import math

import torch
from attrs import frozen
from torch import Tensor, nn

from esper_core.contracts.decisions import Op
from esper_core.contracts.observation import ObservationLayout
from esper_policies.encoding import N_OPS, MaskBatch

_HAS_SLOT = [op is not Op.WAIT for op in Op]
#: how the slot logits are made (module docstring)
SLOT_HEADS = ("linear", "shared")


def _init(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _masked_log_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    return torch.log_softmax(logits.masked_fill(~mask, torch.finfo(logits.dtype).min), dim=-1)


def _entropy(logp: Tensor) -> Tensor:
    return -(logp.exp() * logp).sum(-1)


@frozen
class ActionOutput:
    """One forward pass over a batch: chosen actions and their statistics."""

    actions: Tensor  # long (N, 3): op, slot, blueprint
    log_prob: Tensor  # (N,) joint log-probability of the actions
    factor_log_prob: Tensor  # (N, 3): op, slot and blueprint log-probabilities (0 where a head does not apply)
    entropy: Tensor  # (N, 3): op, slot and blueprint head entropies (0 where a head does not apply)
    value: Tensor  # (N,)
    #: each head's whole log-probability row: op (N, ops); slot (N, slots), given the chosen op;
    #: blueprint (N, blueprints), given the chosen slot
    head_log_probs: tuple[Tensor, Tensor, Tensor]
    applies: Tensor  # bool (N, 3): whether each head took part in the action


class ActorCritic(nn.Module):
    """``trunk`` is ``mlp`` (features of one observation) or ``lstm`` (features of the episode so far)."""

    def __init__(self, obs_size: int, n_slots: int, n_blueprints: int, *, trunk: str = "mlp",
                 hidden: int = 64, initial_wait_logit: float = 0.0, slot_head: str = "linear") -> None:
        super().__init__()
        if trunk not in ("mlp", "lstm"):
            raise ValueError(f"trunk must be 'mlp' or 'lstm', got {trunk!r}")
        if slot_head not in SLOT_HEADS:
            raise ValueError(f"slot_head must be one of {', '.join(SLOT_HEADS)}, got {slot_head!r}")
        self.trunk_kind, self.slot_head_kind = trunk, slot_head
        self.n_slots, self.n_blueprints, self.hidden = n_slots, n_blueprints, hidden
        # Where the per-slot blocks start in the observation, and how wide each is (shared head only).
        self.slot_start, self.slot_width = obs_size, 0
        if slot_head == "shared":
            layout = ObservationLayout(n_slots)
            if obs_size != layout.size:
                raise ValueError(f"slot_head 'shared' reads the observation layout's slot blocks: obs_size must be "
                                 f"{layout.size} for {n_slots} slots, got {obs_size}")
            self.slot_start, self.slot_width = len(layout.global_features), len(layout.slot_features)
        gain = math.sqrt(2)
        if trunk == "mlp":
            self.trunk = nn.Sequential(_init(nn.Linear(obs_size, hidden), gain), nn.Tanh(),
                                       _init(nn.Linear(hidden, hidden), gain), nn.Tanh())
            self.lstm = None
        else:
            self.trunk = nn.Sequential(_init(nn.Linear(obs_size, hidden), gain), nn.Tanh())
            self.lstm = nn.LSTM(hidden, hidden)
            for name, param in self.lstm.named_parameters():
                if "weight" in name:
                    nn.init.orthogonal_(param, 1.0)
                else:
                    nn.init.zeros_(param)
        self.op_head = _init(nn.Linear(hidden, N_OPS), 0.01)
        with torch.no_grad():  # see PPOConfig.initial_wait_logit
            self.op_head.bias[Op.WAIT] = initial_wait_logit
        if slot_head == "linear":
            self.slot_head = _init(nn.Linear(hidden, N_OPS * n_slots), 0.01)
        else:
            self.slot_head = _init(nn.Linear(hidden + self.slot_width + n_slots, N_OPS), 0.01)
            self.slot_ids: Tensor
            self.register_buffer("slot_ids", torch.eye(n_slots), persistent=False)
        self.blueprint_head = _init(nn.Linear(hidden, n_slots * n_blueprints), 0.01)
        self.value_head = _init(nn.Linear(hidden, 1), 1.0)

    def initial_state(self, batch: int) -> tuple[Tensor, Tensor] | None:
        """The recurrent state at the start of an episode (None for the MLP trunk)."""
        if self.lstm is None:
            return None
        zeros = torch.zeros(1, batch, self.hidden)
        return zeros, zeros.clone()

    def features(self, obs: Tensor, state: tuple[Tensor, Tensor] | None = None
                 ) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """Trunk features of ``obs``: ``(N, D)`` for the MLP; ``(T, B, D)`` sequences (or one step
        ``(B, D)``) for the LSTM, continuing from ``state``."""
        x = self.trunk(obs)
        if self.lstm is None:
            return self._with_slot_blocks(x, obs), None
        one_step = x.dim() == 2
        if one_step:
            x = x.unsqueeze(0)
        if state is None:
            state = self.initial_state(x.shape[1])
        out, new_state = self.lstm(x, state)
        return self._with_slot_blocks(out.squeeze(0) if one_step else out, obs), new_state

    def _with_slot_blocks(self, trunk: Tensor, obs: Tensor) -> Tensor:
        # The shared slot scorer reads each slot's block of the observation: it travels with the
        # trunk's output (the last dimension), so every caller of features/heads is unchanged.
        if self.slot_head_kind == "linear":
            return trunk
        return torch.cat([trunk, obs[..., self.slot_start:]], dim=-1)

    def _slot_logits(self, features: Tensor) -> Tensor:
        """``(N, n_ops, n_slots)`` logits of every (op, slot) pair."""
        n, trunk = features.shape[0], features[:, :self.hidden]
        if self.slot_head_kind == "linear":
            return self.slot_head(trunk).view(n, N_OPS, self.n_slots)
        blocks = features[:, self.hidden:].reshape(n, self.n_slots, self.slot_width)
        inputs = torch.cat([trunk.unsqueeze(1).expand(n, self.n_slots, self.hidden), blocks,
                            self.slot_ids.expand(n, self.n_slots, self.n_slots)], dim=-1)
        return self.slot_head(inputs).transpose(1, 2)

    def heads(self, features: Tensor, masks: MaskBatch, actions: Tensor | None = None, *,
              greedy: bool = False, generator: torch.Generator | None = None) -> ActionOutput:
        """Choose actions (or score the given ``actions``) from ``(N, D)`` rows of :meth:`features`."""
        n = features.shape[0]
        rows = torch.arange(n)
        slot_logits_all = self._slot_logits(features)
        features = features[:, :self.hidden]
        op_logp = _masked_log_softmax(self.op_head(features), masks.ops)
        op = actions[:, 0] if actions is not None else _choose(op_logp, greedy, generator)
        slot_logits = slot_logits_all[rows, op]
        slot_logp = _masked_log_softmax(slot_logits, masks.slots[rows, op])
        slot = actions[:, 1] if actions is not None else _choose(slot_logp, greedy, generator)
        bp_logits = self.blueprint_head(features).view(n, self.n_slots, self.n_blueprints)[rows, slot]
        bp_logp = _masked_log_softmax(bp_logits, masks.blueprints)
        bp = actions[:, 2] if actions is not None else _choose(bp_logp, greedy, generator)
        has_slot = torch.tensor(_HAS_SLOT)[op]
        has_bp = op == Op.GERMINATE
        applies = torch.stack([torch.ones_like(has_bp), has_slot, has_bp], dim=1)
        zero = torch.zeros(n)
        factor_log_prob = torch.stack([op_logp[rows, op], torch.where(has_slot, slot_logp[rows, slot], zero),
                                       torch.where(has_bp, bp_logp[rows, bp], zero)], dim=1)
        entropy = torch.stack([_entropy(op_logp), torch.where(has_slot, _entropy(slot_logp), zero),
                               torch.where(has_bp, _entropy(bp_logp), zero)], dim=1)
        return ActionOutput(actions=torch.stack([op, slot, bp], dim=1), log_prob=joint_log_prob(factor_log_prob),
                            factor_log_prob=factor_log_prob, entropy=entropy,
                            value=self.value_head(features).squeeze(-1), head_log_probs=(op_logp, slot_logp, bp_logp),
                            applies=applies)

    def value(self, features: Tensor) -> Tensor:
        return self.value_head(features[..., :self.hidden]).squeeze(-1)


def joint_log_prob(factor_log_prob: Tensor) -> Tensor:
    """Sum of the factors' log-probabilities, added left to right (as every trained policy was)."""
    total = factor_log_prob[:, 0]
    for column in range(1, factor_log_prob.shape[1]):
        total = total + factor_log_prob[:, column]
    return total


def _choose(logp: Tensor, greedy: bool, generator: torch.Generator | None) -> Tensor:
    if greedy:
        return logp.argmax(dim=-1)
    return torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)
