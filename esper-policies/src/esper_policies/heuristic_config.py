"""Options of the heuristic policy, with the DESIGN §6 defaults.

Built from ``PolicyContext.options`` by :meth:`HeuristicConfig.from_options`: an unknown key
or a bad value is a :class:`~esper_core.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from esper_policies._options import (
    any_number,
    config_from_options,
    int_at_least,
    is_bool,
    number_in,
    one_of,
)
from esper_policies.tracker import TrackerConfig

SLOT_CHOICES = ("deepest", "rotate")


@frozen(kw_only=True)
class HeuristicConfig:
    """Every rule threshold of :class:`~esper_policies.heuristic.HeuristicPolicy`."""

    # -- germination -----------------------------------------------------------------------
    #: no germination before this epoch (1-based report epoch ≥ this).
    min_epochs_before_germinate: int = field(default=5, validator=int_at_least(0))
    #: germinate once the tracker's plateau has lasted this many epochs.
    plateau_epochs_to_germinate: int = field(default=3, validator=int_at_least(1))
    #: smoothed accuracy improvement (points/epoch) below which an epoch is a plateau epoch.
    plateau_threshold: float = field(default=0.5, validator=number_in(0.0))
    #: EMA weight of the newest accuracy delta in the smoothed improvement.
    smoothing: float = field(default=0.5, validator=number_in(0.0, 1.0, low_open=True))
    #: length of the tracker's bounded histories.
    history_window: int = field(default=10, validator=int_at_least(1))
    #: "deepest": the highest-index DORMANT slot the mask allows; "rotate": cycle over slots.
    slot_choice: str = field(default="deepest", validator=one_of(*SLOT_CHOICES))

    # -- culling ---------------------------------------------------------------------------
    #: cull a seed after this many consecutive epochs in a stage without improvement.
    cull_after_epochs_without_improvement: int = field(default=5, validator=int_at_least(1))
    #: a seed "improves" when its stage measure (seed_gain / contribution) exceeds this.
    min_seed_improvement: float = field(default=0.0, validator=number_in(-100.0, 100.0))
    #: cull when val accuracy fell by more than this many points since germination.
    cull_if_accuracy_drops_by: float = field(default=2.0, validator=number_in(0.0, low_open=True))
    #: no germination for this many epochs after a cull is seen.
    embargo_epochs_after_cull: int = field(default=5, validator=int_at_least(0))

    # -- fossilization and advancing -------------------------------------------------------
    #: fossilize a PROBATIONARY seed whose counterfactual contribution is at least this.
    fossilize_min_contribution: float = field(default=0.5, validator=any_number)
    #: issue ADVANCE (when the mask offers it) for live seeds with no cull/fossilize reason.
    advance_when_allowed: bool = field(default=True, validator=is_bool)

    # -- blueprint rotation ----------------------------------------------------------------
    blueprint_penalty_on_cull: float = field(default=2.0, validator=number_in(0.0))
    #: multiplied into every penalty once per epoch.
    blueprint_penalty_decay: float = field(default=0.5, validator=number_in(0.0, 1.0))
    #: blueprints whose penalty is above this are skipped (unless all are).
    blueprint_penalty_threshold: float = field(default=3.0, validator=number_in(0.0))

    #: how many past decisions the policy keeps for inspection.
    decision_history: int = field(default=1000, validator=int_at_least(1))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> HeuristicConfig:
        return config_from_options(cls, options, owner="heuristic")

    def tracker_config(self) -> TrackerConfig:
        return TrackerConfig(
            history_window=self.history_window,
            plateau_threshold=self.plateau_threshold,
            smoothing=self.smoothing,
            min_seed_improvement=self.min_seed_improvement,
        )
