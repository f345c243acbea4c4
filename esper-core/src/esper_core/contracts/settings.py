"""Seed-mechanics settings: gate thresholds and lifecycle timing (DESIGN §4).

Topologies ship their own defaults (a task spec names them); a run's ``[kasmina]`` and
``[gates]`` config tables override individual fields. Torch-free.
"""

from __future__ import annotations

from attrs import field, frozen, validators

_nonneg_int = [validators.instance_of(int), validators.ge(0)]
_pos_int = [validators.instance_of(int), validators.ge(1)]


def _nonneg_float(instance: object, attribute: object, value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"must be a non-negative number, got {value!r}")


@frozen(kw_only=True)
class GateThresholds:
    """Thresholds of the built-in gates G0–G5."""

    #: G2: epochs a seed must spend in TRAINING before it may blend.
    g2_min_epochs: int = field(default=2, validator=_nonneg_int)
    #: G2: the seed's measured gain (points) must be at least this (negative allows noise).
    g2_min_improvement: float = field(default=-0.5, converter=float)
    #: G2: parameter-normalised gradient ratio a seed must reach to be "learning".
    g2_gradient_ratio: float = field(default=0.05, converter=float, validator=_nonneg_float)
    #: G3: α a blending seed must reach before SHADOWING.
    g3_min_alpha: float = field(default=0.95, converter=float, validator=_nonneg_float)
    #: G3: epochs a seed must spend BLENDING.
    g3_min_epochs: int = field(default=3, validator=_nonneg_int)
    #: G4: epochs a seed must spend SHADOWING, with a non-negative contribution throughout.
    g4_window: int = field(default=1, validator=_pos_int)
    #: G5: counterfactual contribution (points) required to fossilize.
    g5_min_contribution: float = field(default=1.0, converter=float)


@frozen(kw_only=True)
class LifecycleSettings:
    """Timing and blending of the seed lifecycle."""

    alpha_schedule: str = "tanh"
    #: T: epochs for α to go from 0 to 1.
    blending_epochs: int = field(default=5, validator=_pos_int)
    alpha_temperature: float = field(default=1.0, converter=float, validator=_nonneg_float)
    #: Detach the host activation the seed reads while blending (CNN default True).
    detach_host_in_blending: bool = True
    #: Advance automatically when a gate passes; otherwise wait for an ADVANCE decision.
    auto_advance: bool = True
    #: PROBATIONARY timeout: a seed not fossilized after this many epochs is culled.
    probation_epochs: int = field(default=5, validator=[validators.instance_of(int), validators.ge(5)])
    embargo_epochs: int = field(default=5, validator=_nonneg_int)
    resetting_epochs: int = field(default=1, validator=_nonneg_int)


@frozen(kw_only=True)
class TopologyDefaults:
    """What a topology (via its task specs) recommends for seed mechanics."""

    gates: GateThresholds = field(factory=GateThresholds)
    lifecycle: LifecycleSettings = field(factory=LifecycleSettings)
