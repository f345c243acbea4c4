"""Kasmina: seed slots, their lifecycle, gates, counterfactual credit and safe training.

Importing this package imports torch; ``import esper_core`` does not import it.
"""

from esper_core.kasmina.alpha import (
    CosineSchedule,
    LinearSchedule,
    TanhSchedule,
    cosine_schedule,
    linear_schedule,
    tanh_schedule,
)
from esper_core.kasmina.counterfactual import ValidationResult, evaluate, measure_accuracy
from esper_core.kasmina.distributed import agree, agree_all, agree_min, is_distributed
from esper_core.kasmina.gates import (
    GateContext,
    GateSuite,
    g0_blueprint_fits,
    g1_shape_and_finite,
    g2_gradient_readiness,
    g3_blending_complete,
    g4_stability,
    g5_contribution,
)
from esper_core.kasmina.governor import SafetyGovernor
from esper_core.kasmina.gradients import GradientRatioTracker, gradient_ratio
from esper_core.kasmina.model import MorphogeneticModel, ParamCounts
from esper_core.kasmina.slot import SeedSlot, SlotState
from esper_core.kasmina.training import SeedTrainer, TrainStats

__all__ = [
    "CosineSchedule",
    "GateContext",
    "GateSuite",
    "GradientRatioTracker",
    "LinearSchedule",
    "MorphogeneticModel",
    "ParamCounts",
    "SafetyGovernor",
    "SeedSlot",
    "SeedTrainer",
    "SlotState",
    "TanhSchedule",
    "TrainStats",
    "ValidationResult",
    "agree",
    "agree_all",
    "agree_min",
    "cosine_schedule",
    "evaluate",
    "g0_blueprint_fits",
    "g1_shape_and_finite",
    "g2_gradient_readiness",
    "g3_blending_complete",
    "g4_stability",
    "g5_contribution",
    "gradient_ratio",
    "is_distributed",
    "linear_schedule",
    "measure_accuracy",
    "tanh_schedule",
]
