"""Factored controller actions: op × slot × blueprint, with masks (DESIGN §3).

Every policy, heuristic or learned, answers with the same :class:`Decision`; the run engine
builds an :class:`ActionMask` each epoch so that no policy can pick an action the lifecycle
would refuse.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

from attrs import field, frozen, validators


class Op(enum.IntEnum):
    WAIT = 0
    GERMINATE = 1
    ADVANCE = 2
    CULL = 3
    FOSSILIZE = 4


def _confidence(instance: object, attribute: object, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Decision.confidence must be in [0, 1], got {value!r}")


@frozen(kw_only=True)
class Decision:
    """One controller decision. ``slot`` is a slot index; ``blueprint`` a catalog key.

    WAIT has neither; GERMINATE has both; ADVANCE, CULL and FOSSILIZE have a slot only.
    """

    op: Op = field(converter=Op)
    slot: int | None = None
    blueprint: str | None = None
    reason: str = field(default="", validator=validators.instance_of(str))
    confidence: float = field(default=1.0, converter=float, validator=_confidence)

    def __attrs_post_init__(self) -> None:
        if self.op is Op.WAIT and (self.slot is not None or self.blueprint is not None):
            raise ValueError("a WAIT decision takes no slot and no blueprint")
        if self.op is not Op.WAIT and self.slot is None:
            raise ValueError(f"a {self.op.name} decision needs a slot")
        if (self.op is Op.GERMINATE) != (self.blueprint is not None):
            raise ValueError("a blueprint is given exactly when the op is GERMINATE")

    @classmethod
    def wait(cls, reason: str, confidence: float = 1.0) -> Decision:
        return cls(op=Op.WAIT, reason=reason, confidence=confidence)

    def describe(self) -> str:
        parts = [self.op.name]
        if self.slot is not None:
            parts.append(f"slot={self.slot}")
        if self.blueprint is not None:
            parts.append(f"blueprint={self.blueprint}")
        return " ".join(parts)


def _bool_tuple(value: object) -> tuple[bool, ...]:
    return tuple(bool(v) for v in value)  # type: ignore[attr-defined]


def _bool_matrix(value: object) -> tuple[tuple[bool, ...], ...]:
    return tuple(_bool_tuple(row) for row in value)  # type: ignore[attr-defined]


@frozen(kw_only=True)
class ActionMask:
    """Which factored actions are allowed this epoch.

    ``slots[op][i]`` says whether ``op`` may target slot ``i``; ``blueprints[j]`` whether
    catalog entry ``blueprint_keys[j]`` may be germinated. An op is allowed when at least one
    slot allows it (WAIT always is).
    """

    slots: tuple[tuple[bool, ...], ...] = field(converter=_bool_matrix)
    blueprints: tuple[bool, ...] = field(converter=_bool_tuple)
    blueprint_keys: tuple[str, ...] = field(converter=tuple[str, ...])
    #: ``costs[i][j]``: parameters blueprint ``blueprint_keys[j]`` would add in slot ``i`` (its
    #: estimate at that slot's width); empty when the builder does not know them.
    costs: tuple[tuple[int, ...], ...] = field(
        default=(), converter=lambda v: tuple(tuple(int(c) for c in r) for r in v))
    #: seed parameters still allowed by the run's parameter budget (None: no budget).
    budget_left: int | None = None

    def __attrs_post_init__(self) -> None:
        if len(self.slots) != len(Op):
            raise ValueError(f"ActionMask.slots needs one row per op ({len(Op)}), got {len(self.slots)}")
        widths = {len(row) for row in self.slots}
        if len(widths) > 1:
            raise ValueError("ActionMask.slots rows must all have one entry per slot")
        if len(self.blueprints) != len(self.blueprint_keys):
            raise ValueError("ActionMask.blueprints and blueprint_keys must have the same length")
        if self.costs and (len(self.costs) != len(self.slots[0])
                           or any(len(row) != len(self.blueprint_keys) for row in self.costs)):
            raise ValueError("ActionMask.costs needs one row per slot with one entry per blueprint")

    def cost(self, slot: int, key: str) -> int | None:
        """Parameters ``key`` would add in ``slot`` (None when the mask carries no costs)."""
        if not self.costs or key not in self.blueprint_keys:
            return None
        return self.costs[slot][self.blueprint_keys.index(key)]

    @property
    def n_slots(self) -> int:
        return len(self.slots[0])

    @property
    def ops(self) -> tuple[bool, ...]:
        """Per-op availability (WAIT is always available)."""
        return tuple(op is Op.WAIT or any(self.slots[op]) for op in Op)

    def blueprint_allowed(self, key: str) -> bool:
        try:
            return self.blueprints[self.blueprint_keys.index(key)]
        except ValueError:
            return False

    def allows(self, decision: Decision) -> bool:
        """Whether ``decision`` is one of the allowed actions."""
        if decision.op is Op.WAIT:
            return True
        slot = decision.slot
        if slot is None or not 0 <= slot < self.n_slots or not self.slots[decision.op][slot]:
            return False
        if decision.op is Op.GERMINATE:
            return decision.blueprint is not None and self.blueprint_allowed(decision.blueprint)
        return True

    def valid_decisions(self) -> Iterator[Decision]:
        """Every allowed decision (WAIT first), in a deterministic order."""
        yield Decision.wait("enumerated")
        for op in Op:
            if op is Op.WAIT:
                continue
            for slot, ok in enumerate(self.slots[op]):
                if not ok:
                    continue
                if op is Op.GERMINATE:
                    for key, bp_ok in zip(self.blueprint_keys, self.blueprints, strict=True):
                        if bp_ok:
                            yield Decision(op=op, slot=slot, blueprint=key, reason="enumerated")
                else:
                    yield Decision(op=op, slot=slot, reason="enumerated")
