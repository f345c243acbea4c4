"""Seed-mechanics settings: gate thresholds and lifecycle timing (DESIGN §4).

Topologies ship their own defaults (a task spec names them); a run's ``[kasmina]`` and
``[gates]`` config tables override individual fields. Torch-free.
"""

from __future__ import annotations

from typing import Any

from attrs import field, frozen

from esper_core.options import int_at_least, number_in, one_of

# The validators of esper_core.options: a wrong value reads as every other config mistake,
# ``[gates] g4_window = 0 is invalid; expected an integer ≥ 1`` (the table and key named).
_nonneg_int = int_at_least(0)
_pos_int = int_at_least(1)
_nonneg_float = number_in(0.0)
_any_float = number_in()
#: α, a blending weight, runs from 0 to 1: a threshold on it outside [0, 1] could never pass.
_alpha = number_in(0.0, 1.0)


def _as_float(value: Any) -> Any:
    """An integer becomes a float; anything else reaches the validator as it is (a string or a
    bool is refused there, never converted: ``float(True)`` would be 1.0)."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # too large for a float: the validator refuses it
            return value
    return value


@frozen(kw_only=True)
class GateThresholds:
    """Thresholds of the built-in gates G0–G5.

    G2–G5 decide on paired per-example statistics with their standard errors: a measure must
    clear its threshold by ``confidence_z`` standard errors (G2, G5), or must not fall below
    zero by that much (G3, G4)."""

    #: Standard errors a gate's measure must clear its threshold by (one-sided; 1.645 ≈ 95 %).
    confidence_z: float = field(default=1.645, converter=_as_float, validator=_nonneg_float)
    #: G2: epochs a seed must spend in TRAINING before it may blend.
    g2_min_epochs: int = field(default=2, validator=_nonneg_int)
    #: G2: the lower confidence bound of the seed's gain (points) must exceed this ...
    g2_min_improvement: float = field(default=0.0, converter=_as_float, validator=_any_float)
    #: ... ("better"), or its upper bound must reach it ("not_worse": blend every seed that is
    #: not measurably harmful and let G5 judge the blended seed). Measured on the default CNN
    #: task (docs/growth.md): a seed's gain in TRAINING, against a host not yet adapted to it, is
    #: a weak signal even for a seed that pays once blended, and "not_worse" grew better models.
    g2_test: str = field(default="not_worse", validator=one_of("better", "not_worse"))
    #: G2: parameter-normalised gradient ratio a seed must reach to be "learning".
    g2_gradient_ratio: float = field(default=0.05, converter=_as_float, validator=_nonneg_float)
    #: G3: α a blending seed must reach before SHADOWING (α never exceeds 1: in [0, 1]).
    g3_min_alpha: float = field(default=0.95, converter=_as_float, validator=_alpha)
    #: G3: epochs a seed must spend BLENDING.
    g3_min_epochs: int = field(default=3, validator=_nonneg_int)
    #: G4: epochs a seed must spend SHADOWING, with a non-negative contribution throughout.
    g4_window: int = field(default=1, validator=_pos_int)
    #: G5: the lower confidence bound of the counterfactual contribution (points) must exceed
    #: this to fossilize.
    g5_min_contribution: float = field(default=0.0, converter=_as_float, validator=_any_float)


#: How a seed in TRAINING learns (see esper_core.kasmina.training for the measurement).
TRAINING_OBJECTIVES = ("feedback", "straight_through")


@frozen(kw_only=True)
class LifecycleSettings:
    """Timing and blending of the seed lifecycle."""

    #: "feedback": the seed learns from the loss of the model with it switched in (a second
    #: forward of the downstream segments, host parameters excluded); "straight_through": the
    #: seed follows ∂L/∂h of the host's own forward (no feedback from its own output).
    training_objective: str = field(default="feedback", validator=one_of(*TRAINING_OBJECTIVES))
    alpha_schedule: str = "tanh"
    #: T: epochs for α to go from 0 to 1.
    blending_epochs: int = field(default=5, validator=_pos_int)
    alpha_temperature: float = field(default=1.0, converter=_as_float, validator=_nonneg_float)
    #: Detach the host activation the seed reads while blending (CNN default True).
    detach_host_in_blending: bool = True
    #: Advance automatically when a gate passes; otherwise wait for an ADVANCE decision.
    auto_advance: bool = True
    #: Offer FOSSILIZE, and ADVANCE when ``auto_advance`` is off, only where the gates into
    #: the next stage would pass now (the action mask then says exactly what the lifecycle
    #: accepts); off: offered by stage alone, and the gate refuses when the decision is applied.
    mask_by_gates: bool = True
    #: PROBATIONARY timeout: a seed not fossilized after this many epochs is culled.
    probation_epochs: int = field(default=5, validator=int_at_least(5))
    embargo_epochs: int = field(default=5, validator=_nonneg_int)
    resetting_epochs: int = field(default=1, validator=_nonneg_int)


@frozen(kw_only=True)
class TopologyDefaults:
    """What a topology (via its task specs) recommends for seed mechanics."""

    gates: GateThresholds = field(factory=GateThresholds)
    lifecycle: LifecycleSettings = field(factory=LifecycleSettings)
