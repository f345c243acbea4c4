"""Options of the heuristic policy, with the DESIGN §6 defaults.

Built from ``PolicyContext.options`` by :meth:`HeuristicConfig.from_options`: an unknown key
or a bad value is a :class:`~esper_core.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from esper_core.options import (
    any_number,
    int_at_least,
    is_bool,
    number_in,
    one_of,
    parse_options,
)
from esper_policies.tracker import TrackerConfig

SLOT_CHOICES = ("cheapest", "deepest", "rotate")


@frozen(kw_only=True)
class HeuristicConfig:
    """Every rule threshold of :class:`~esper_policies.heuristic.HeuristicPolicy`."""

    # -- germination -----------------------------------------------------------------------
    #: no germination before this epoch (1-based report epoch ≥ this).
    min_epochs_before_germinate: int = field(default=1, validator=int_at_least(0))
    #: germinate once the tracker's plateau has lasted this many epochs (0: no plateau needed).
    #: Measured (docs/growth.md, heuristic variants): with the default task's cosine schedule
    #: the host never plateaus before the last third of the episode, so a plateau trigger
    #: germinated at epoch 24 or never (60.25–61.40 % validation, the host alone); growing from
    #: the first epoch gave the seeds the high-learning-rate part of the schedule to integrate
    #: with the host (65.10–71.50 %). A seed that does not pay is culled by G5 or the heuristic,
    #: so an early seed costs little.
    plateau_epochs_to_germinate: int = field(default=0, validator=int_at_least(0))
    #: smoothed accuracy improvement (points/epoch) below which an epoch is a plateau epoch.
    plateau_threshold: float = field(default=0.5, validator=number_in(0.0))
    #: EMA weight of the newest accuracy delta in the smoothed improvement.
    smoothing: float = field(default=0.5, validator=number_in(0.0, 1.0, low_open=True))
    #: length of the tracker's bounded histories.
    history_window: int = field(default=10, validator=int_at_least(1))
    #: "cheapest": the free slot where the chosen blueprint adds the fewest parameters (ties:
    #: the deepest); "deepest": the highest-index free slot; "rotate": cycle over slots.
    slot_choice: str = field(default="cheapest", validator=one_of(*SLOT_CHOICES))

    # -- culling ---------------------------------------------------------------------------
    #: cull a seed after this many consecutive epochs in a stage without improvement.
    cull_after_epochs_without_improvement: int = field(default=5, validator=int_at_least(1))
    #: a seed "improves" when the lower confidence bound of its stage measure (seed_gain /
    #: contribution minus ``confidence_z`` standard errors) exceeds this.
    min_seed_improvement: float = field(default=0.0, validator=number_in(-100.0, 100.0))
    #: standard errors a seed's measure must clear a threshold by; the default is the gates'
    #: (``GateThresholds.confidence_z``), so the heuristic asks exactly what G2 and G5 ask.
    confidence_z: float = field(default=1.645, validator=number_in(0.0, 10.0))
    #: cull when val accuracy fell by more than this many points since germination.
    cull_if_accuracy_drops_by: float = field(default=2.0, validator=number_in(0.0, low_open=True))
    #: no germination for this many epochs after a cull is seen.
    embargo_epochs_after_cull: int = field(default=5, validator=int_at_least(0))

    # -- fossilization and advancing -------------------------------------------------------
    #: fossilize a PROBATIONARY seed whose contribution's lower confidence bound exceeds this
    #: (the G5 default, ``GateThresholds.g5_min_contribution``: a seed G5 would refuse is never
    #: proposed, and one it would pass is never left waiting for the probation timeout).
    fossilize_min_contribution: float = field(default=0.0, validator=any_number)
    #: issue ADVANCE (when the mask offers it) for live seeds with no cull/fossilize reason.
    advance_when_allowed: bool = field(default=True, validator=is_bool)

    # -- blueprint choice ------------------------------------------------------------------
    #: never germinate a seed that would take all seed parameters above this fraction of the
    #: host's own parameter count (in the slot chosen; other slots are tried first).
    max_added_fraction: float = field(default=1.0, validator=number_in(0.0, low_open=True))
    #: "preference": the blueprints in the task's order (its measured preference), each used
    #: again until it is culled; "rotate": cycle through them so that every design is tried.
    blueprint_choice: str = field(default="preference", validator=one_of("preference", "rotate"))
    #: after a seed fossilizes, try its blueprint first at the next germination (in another
    #: slot): the blueprint known to pay before the ones not tried yet.
    repeat_fossilized_blueprint: bool = field(default=True, validator=is_bool)
    #: a culled blueprint's penalty. Above the threshold, so a culled blueprint is skipped
    #: until every allowed one has been culled (at 2 below a threshold of 3, with a ×0.5
    #: decay per epoch, a culled blueprint was never avoided).
    blueprint_penalty_on_cull: float = field(default=4.0, validator=number_in(0.0))
    #: multiplied into every penalty once per epoch (1.0: penalties last the episode).
    blueprint_penalty_decay: float = field(default=1.0, validator=number_in(0.0, 1.0))
    #: blueprints whose penalty is above this are skipped (unless all are).
    blueprint_penalty_threshold: float = field(default=3.0, validator=number_in(0.0))

    #: how many past decisions the policy keeps for inspection.
    decision_history: int = field(default=1000, validator=int_at_least(1))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> HeuristicConfig:
        return parse_options(cls, options, owner="policy 'heuristic'")

    def tracker_config(self) -> TrackerConfig:
        return TrackerConfig(
            history_window=self.history_window,
            plateau_threshold=self.plateau_threshold,
            smoothing=self.smoothing,
            min_seed_improvement=self.min_seed_improvement,
            confidence_z=self.confidence_z,
        )


def read_heuristic_options(*, options: Mapping[str, Any]) -> HeuristicConfig:
    """``PolicySpec.read_options`` of ``heuristic``: its options, defaults filled in."""
    return HeuristicConfig.from_options(options)
