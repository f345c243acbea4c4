"""Seed lifecycle stages and the transition table (DESIGN §3).

The happy path is DORMANT → GERMINATED → TRAINING → BLENDING → SHADOWING → PROBATIONARY →
FOSSILIZED. Any live stage may be CULLED; a culled slot dwells in EMBARGOED, then RESETTING,
then returns to DORMANT. FOSSILIZED is terminal.
"""

from __future__ import annotations

import enum

from esper_core.errors import InvalidTransitionError


class SeedStage(enum.IntEnum):
    UNKNOWN = 0
    DORMANT = 1
    GERMINATED = 2
    TRAINING = 3
    BLENDING = 4
    SHADOWING = 5
    PROBATIONARY = 6
    FOSSILIZED = 7
    CULLED = 8
    EMBARGOED = 9
    RESETTING = 10


_S = SeedStage

TRANSITIONS: dict[SeedStage, frozenset[SeedStage]] = {
    _S.UNKNOWN: frozenset({_S.DORMANT}),
    _S.DORMANT: frozenset({_S.GERMINATED}),
    _S.GERMINATED: frozenset({_S.TRAINING, _S.CULLED}),
    _S.TRAINING: frozenset({_S.BLENDING, _S.CULLED}),
    _S.BLENDING: frozenset({_S.SHADOWING, _S.CULLED}),
    _S.SHADOWING: frozenset({_S.PROBATIONARY, _S.CULLED}),
    _S.PROBATIONARY: frozenset({_S.FOSSILIZED, _S.CULLED}),
    _S.FOSSILIZED: frozenset(),
    _S.CULLED: frozenset({_S.EMBARGOED}),
    _S.EMBARGOED: frozenset({_S.RESETTING}),
    _S.RESETTING: frozenset({_S.DORMANT}),
}

#: Stages in which a seed module exists and trains.
LIVE_STAGES = frozenset({_S.GERMINATED, _S.TRAINING, _S.BLENDING, _S.SHADOWING, _S.PROBATIONARY})
#: Stages in which the seed's output is mixed into the host with α (counterfactual applies).
BLENDED_STAGES = frozenset({_S.BLENDING, _S.SHADOWING, _S.PROBATIONARY})
#: Stages a policy may not germinate into (the slot is occupied or cooling down).
OCCUPIED_STAGES = LIVE_STAGES | {_S.FOSSILIZED, _S.CULLED, _S.EMBARGOED, _S.RESETTING}
#: The next stage on the happy path, for ADVANCE decisions and auto-advance.
NEXT_STAGE: dict[SeedStage, SeedStage] = {
    _S.GERMINATED: _S.TRAINING,
    _S.TRAINING: _S.BLENDING,
    _S.BLENDING: _S.SHADOWING,
    _S.SHADOWING: _S.PROBATIONARY,
    _S.PROBATIONARY: _S.FOSSILIZED,
}


def can_transition(src: SeedStage, dst: SeedStage) -> bool:
    """Whether the lifecycle allows moving from ``src`` to ``dst``."""
    return dst in TRANSITIONS[src]


def check_transition(src: SeedStage, dst: SeedStage) -> None:
    """Raise :class:`InvalidTransitionError` naming both stages unless ``src → dst`` is valid."""
    if not can_transition(src, dst):
        allowed = ", ".join(s.name for s in sorted(TRANSITIONS[src])) or "none (terminal)"
        raise InvalidTransitionError(
            f"invalid seed transition {src.name} → {dst.name}; from {src.name} allowed: {allowed}"
        )
