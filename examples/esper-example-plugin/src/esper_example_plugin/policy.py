"""The ``eager`` policy: grow at every chance, try each blueprint in turn, keep what helps.

After every epoch Esper calls :meth:`EagerPolicy.decide` with the epoch's report and the action
mask; the decision must be one the mask allows. In priority order the policy

1. fossilizes a PROBATIONARY seed whose counterfactual contribution is positive, and culls one
   whose contribution is negative (the lifecycle advances seeds up to PROBATIONARY itself);
2. germinates into the deepest free slot, choosing among the allowed blueprints the one it has
   germinated least often this episode (ties: catalog order);
3. otherwise waits.

Because it germinates at the first epoch a slot is free, ``esper run --policy eager
--blueprints B`` is the quickest way to watch blueprint ``B`` go through the lifecycle.
"""

from __future__ import annotations

from collections import Counter

from esper_core.contracts.decisions import ActionMask, Decision, Op
from esper_core.contracts.protocols import PolicyContext
from esper_core.contracts.reports import EpochReport
from esper_core.contracts.stages import SeedStage
from esper_core.errors import ConfigError


class EagerPolicy:
    name = "eager"

    def __init__(self) -> None:
        self._germinated: Counter[str] = Counter()

    @classmethod
    def from_context(cls, *, context: PolicyContext) -> EagerPolicy:
        if context.options:
            raise ConfigError(f"the eager policy takes no options, got {sorted(context.options)[0]!r}")
        return cls()

    def reset(self, *, episode: int) -> None:
        self._germinated.clear()

    def decide(self, *, report: EpochReport, mask: ActionMask) -> Decision:
        for slot in report.slots:
            if slot.stage is not SeedStage.PROBATIONARY or slot.contribution is None:
                continue
            if slot.contribution > 0 and mask.slots[Op.FOSSILIZE][slot.index]:
                return Decision(op=Op.FOSSILIZE, slot=slot.index,
                                reason=f"{slot.slot} contributes {slot.contribution:+.2f} points")
            if slot.contribution < 0 and mask.slots[Op.CULL][slot.index]:
                return Decision(op=Op.CULL, slot=slot.index,
                                reason=f"{slot.slot} costs {-slot.contribution:.2f} points")
        allowed = [key for key, ok in zip(mask.blueprint_keys, mask.blueprints, strict=True) if ok]
        free = [i for i, ok in enumerate(mask.slots[Op.GERMINATE]) if ok]
        if not allowed or not free:
            return Decision.wait("no free slot" if not free else "no blueprint allowed")
        blueprint = min(allowed, key=lambda key: self._germinated[key])  # min keeps the first of ties
        self._germinated[blueprint] += 1
        return Decision(op=Op.GERMINATE, slot=free[-1], blueprint=blueprint,
                        reason=f"slot free after epoch {report.epoch}; {blueprint} germinated least")
