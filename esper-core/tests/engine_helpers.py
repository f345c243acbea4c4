"""Scripted policies for engine tests on the toy topology (imported by several test files)."""

from __future__ import annotations

import types

from esper_core import hookimpl
from esper_core.contracts import Decision, Op, PolicySpec


class Germinating:
    """Germinates the run's first blueprint in the last slot whenever allowed."""

    def __init__(self, context):
        self.context = context

    def reset(self, *, episode):
        pass

    def decide(self, *, report, mask):
        last = mask.n_slots - 1
        if mask.slots[Op.GERMINATE][last]:
            return Decision(op=Op.GERMINATE, slot=last, blueprint=self.context.blueprint_keys[0], reason="test")
        return Decision.wait("test")


class Scripted:
    """Germinate in the last slot at epoch 1, fossilize whenever allowed."""

    name = "scripted"

    def __init__(self, context):
        self.context = context

    def reset(self, *, episode):
        self.episode = episode

    def decide(self, *, report, mask):
        for i, ok in enumerate(mask.slots[Op.FOSSILIZE]):
            if ok:
                return Decision(op=Op.FOSSILIZE, slot=i, reason="probation reached")
        last = mask.n_slots - 1
        if report.epoch == 1 and mask.slots[Op.GERMINATE][last]:
            return Decision(op=Op.GERMINATE, slot=last, blueprint=self.context.blueprint_keys[0], reason="script")
        return Decision.wait("script")


class Waiting(Scripted):
    name = "noop"

    def decide(self, *, report, mask):
        return Decision.wait("never grows")


class Rogue(Scripted):
    name = "rogue"

    def decide(self, *, report, mask):
        return Decision(op=Op.FOSSILIZE, slot=0, reason="ignores the mask")


class Insistent(Scripted):
    """Germinates like Scripted, advances whenever the mask offers ADVANCE, and asks to fossilize
    every PROBATIONARY seed, offered or not."""

    name = "insistent"

    def decide(self, *, report, mask):
        for s in report.slots:
            if s.stage.name == "PROBATIONARY":
                return Decision(op=Op.FOSSILIZE, slot=s.index, reason="insists")
        for i, ok in enumerate(mask.slots[Op.ADVANCE]):
            if ok:
                return Decision(op=Op.ADVANCE, slot=i, reason="advance when offered")
        return super().decide(report=report, mask=mask)


def _policies_plugin(*, baseline_role: bool = True):
    """Scripted policies; ``noop`` plays the baseline role, as esper-policies' does, unless told not to."""
    module = types.ModuleType("scripted_policies")

    @hookimpl
    def esper_register_policies():
        return [
            PolicySpec(name="scripted", factory=lambda context: Scripted(context), description="test"),
            PolicySpec(name="noop", factory=lambda context: Waiting(context), description="test",
                       roles=("baseline",) if baseline_role else ()),
            PolicySpec(name="rogue", factory=lambda context: Rogue(context), description="test"),
            PolicySpec(name="insistent", factory=lambda context: Insistent(context), description="test"),
        ]

    module.esper_register_policies = esper_register_policies
    return module
