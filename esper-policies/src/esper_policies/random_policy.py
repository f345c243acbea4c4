"""RandomPolicy: a uniformly random controller over whatever the mask allows.

Sampling is factored like the action space: an op uniformly among the allowed ops (WAIT
always, GERMINATE only when some slot *and* some blueprint allow it), then a slot among those
that allow the op, then (for GERMINATE) a blueprint among the allowed ones. The decision's
confidence is the probability of having drawn it. The generator is ``random.Random`` seeded
from ``context.seed`` and the episode number, so a (seed, episode) pair always replays the
same decisions, independent of other policies and of Python's hash randomisation.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from esper_core.contracts.decisions import ActionMask, Decision, Op
from esper_core.contracts.protocols import PolicyContext
from esper_core.contracts.reports import EpochReport
from esper_core.options import reject_all


class RandomPolicy:
    """Uniform over allowed ops, then slots, then blueprints; deterministic per seed."""

    name = "random"

    def __init__(self, *, seed: int) -> None:
        self.seed = seed
        self.reset(episode=0)

    @classmethod
    def from_context(cls, *, context: PolicyContext) -> RandomPolicy:
        reject_all(context.options, owner="policy 'random'")
        return cls(seed=context.seed)

    def reset(self, *, episode: int) -> None:
        # A string seed is hashed with SHA-512 by random.Random: stable across processes and
        # collision-free between (seed, episode) pairs, unlike seed * k + episode.
        self._rng = random.Random(f"esper-random:{self.seed}:{episode}")

    def state_dict(self) -> dict[str, Any]:
        """The generator's state (run checkpoints)."""
        return {"rng": self._rng.getstate()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._rng.setstate(state["rng"])

    def decide(self, *, report: EpochReport, mask: ActionMask) -> Decision:
        blueprints = [k for k, ok in zip(mask.blueprint_keys, mask.blueprints, strict=True) if ok]
        ops = [
            op for op in Op
            if op is Op.WAIT or (any(mask.slots[op]) and (op is not Op.GERMINATE or blueprints))
        ]
        op = self._rng.choice(ops)
        p_op = 1.0 / len(ops)
        if op is Op.WAIT:
            return Decision.wait(
                f"random: drew WAIT among {len(ops)} allowed ops after epoch {report.epoch}",
                confidence=p_op,
            )
        slots = [i for i, ok in enumerate(mask.slots[op]) if ok]
        slot = self._rng.choice(slots)
        probability = p_op / len(slots)
        blueprint = None
        detail = f"slot {slot} of {len(slots)} allowed"
        if op is Op.GERMINATE:
            blueprint = self._rng.choice(blueprints)
            probability /= len(blueprints)
            detail += f", {blueprint} of {len(blueprints)} allowed blueprints"
        return Decision(
            op=op,
            slot=slot,
            blueprint=blueprint,
            reason=(f"random: drew {op.name} among {len(ops)} allowed ops after epoch "
                    f"{report.epoch}; {detail}"),
            confidence=probability,
        )
