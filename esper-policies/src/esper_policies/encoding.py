"""Observations, action masks and decisions as tensors, for a batch of environments.

The action is factored like :class:`~esper_core.contracts.decisions.Decision`: an op, a slot
and a blueprint, as three indices. The slot is meaningful unless the op is WAIT; the blueprint
only for GERMINATE. Masks mirror :class:`~esper_core.contracts.decisions.ActionMask`:
``ops (B, n_ops)``, ``slots (B, n_ops, n_slots)`` (which slots each op may target) and
``blueprints (B, n_blueprints)``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import attrs
import torch
from attrs import frozen

from esper_core.contracts.decisions import ActionMask, Decision, Op
from esper_core.contracts.observation import ObservationLayout
from esper_core.contracts.reports import EpochReport
from esper_policies.tracker import SignalTracker

N_OPS = len(Op)


@frozen
class MaskBatch:
    ops: torch.Tensor  # bool (B, n_ops)
    slots: torch.Tensor  # bool (B, n_ops, n_slots)
    blueprints: torch.Tensor  # bool (B, n_blueprints)

    def index(self, rows: torch.Tensor | slice | tuple[slice | torch.Tensor, ...]) -> MaskBatch:
        return MaskBatch(self.ops[rows], self.slots[rows], self.blueprints[rows])

    @staticmethod
    def stack(batches: Sequence[MaskBatch]) -> MaskBatch:
        """Stack per-step batches along a new leading time axis: ``(T, B, ...)``."""
        return MaskBatch(torch.stack([b.ops for b in batches]), torch.stack([b.slots for b in batches]),
                         torch.stack([b.blueprints for b in batches]))

    def flatten(self) -> MaskBatch:
        """``(T, B, ...)`` → ``(T·B, ...)``."""
        return MaskBatch(self.ops.flatten(0, 1), self.slots.flatten(0, 1), self.blueprints.flatten(0, 1))


def encode_masks(masks: Sequence[ActionMask]) -> MaskBatch:
    """Tensors of a batch of masks. An op counts as allowed only when it can actually be taken:
    GERMINATE also needs an allowed blueprint."""
    slots = torch.tensor([[list(row) for row in m.slots] for m in masks], dtype=torch.bool)
    blueprints = torch.tensor([list(m.blueprints) for m in masks], dtype=torch.bool)
    ops = slots.any(dim=2)
    ops[:, Op.WAIT] = True
    ops[:, Op.GERMINATE] &= blueprints.any(dim=1)
    return MaskBatch(ops, slots, blueprints)


class ObservationBuilder:
    """One :class:`SignalTracker` per environment feeding the versioned observation layout."""

    def __init__(self, n_envs: int, n_slots: int) -> None:
        self.layout = ObservationLayout(n_slots)
        self.trackers = [SignalTracker() for _ in range(n_envs)]

    @property
    def size(self) -> int:
        return self.layout.size

    def reset(self) -> None:
        for tracker in self.trackers:
            tracker.reset()

    def build(self, reports: Sequence[EpochReport]) -> torch.Tensor:
        """``(B, size)`` observations after feeding each environment's tracker its report."""
        signals = [t.update(r) for t, r in zip(self.trackers, reports, strict=True)]
        return self.layout.build_batch(signals)

    def peek_next(self, reports: Sequence[EpochReport]) -> torch.Tensor:
        """Observations of the state an episode was cut off in, without touching the trackers.

        ``reports`` are the reports after the last decision (same epoch as the last observation);
        they are presented as the next epoch with nothing changed — the state the controller
        would have seen had the host not trained further — to bootstrap a truncated episode.
        """
        signals = [copy.deepcopy(t).update(attrs.evolve(r, epoch=r.epoch + 1))
                   for t, r in zip(self.trackers, reports, strict=True)]
        return self.layout.build_batch(signals)


def to_decisions(actions: torch.Tensor, probabilities: torch.Tensor, values: torch.Tensor,
                 blueprint_keys: Sequence[str], *, how: str, policy: str = "ppo") -> list[Decision]:
    """Decisions from ``(B, 3)`` action indices, with the action's probability as confidence."""
    decisions = []
    for (op_i, slot_i, bp_i), p, v in zip(actions.tolist(), probabilities.tolist(), values.tolist(), strict=True):
        op = Op(op_i)
        reason = f"{policy} ({how}): p={p:.3f}, value={v:+.2f}"
        confidence = min(1.0, max(0.0, p))
        if op is Op.WAIT:
            decisions.append(Decision.wait(reason, confidence=confidence))
        else:
            decisions.append(Decision(op=op, slot=slot_i,
                                      blueprint=blueprint_keys[bp_i] if op is Op.GERMINATE else None,
                                      reason=reason, confidence=confidence))
    return decisions
