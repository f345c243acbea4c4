"""What the run engine tells a controller after each epoch, and what a tracker derives.

:class:`EpochReport` holds raw measurements of one epoch (the engine builds it);
:class:`TrainingSignals` adds the derived, history-aware signals (plateau length, deltas,
smoothed trend) that a signal tracker computes from a sequence of reports. Accuracies are in
percentage points (0–100) throughout.
"""

from __future__ import annotations

from attrs import field, frozen

from esper_core.contracts.stages import LIVE_STAGES, SeedStage


@frozen(kw_only=True)
class SlotReport:
    """The state of one seed slot at the end of an epoch."""

    slot: str
    index: int
    width: int
    stage: SeedStage = field(converter=SeedStage)
    blueprint: str | None = None
    epochs_in_stage: int = 0
    alpha: float = 0.0
    #: Dependence on the seed: metric(α) − metric(α = 0) in points, measured from BLENDING on
    #: (None before). Downstream layers that trained with the seed lose their adaptation too when
    #: it is removed, so this overstates what the seed added.
    contribution: float | None = None
    #: Gain over the no-seed path: metric(α = 1) − metric(α = 0) for a seed in TRAINING (what it
    #: would add if switched on, the host not yet adapted to it).
    seed_gain: float | None = None
    #: Standard errors (points) of the paired per-example means above; None when not measured.
    contribution_se: float | None = None
    seed_gain_se: float | None = None
    #: parameter-normalised gradient ratio (EMA, bias-corrected), see the G2 gate.
    gradient_ratio: float = 0.0
    seed_params: int = 0
    germinated_epoch: int | None = None
    #: validation accuracy when this seed germinated (for "improvement since germination").
    accuracy_at_germination: float | None = None

    @property
    def live(self) -> bool:
        return self.stage in LIVE_STAGES

    def lower_bound(self, z: float) -> float | None:
        """The stage's measure minus ``z`` standard errors: ``seed_gain`` in TRAINING, else
        ``contribution`` (None when not measured; an unknown error counts as zero)."""
        value, se = ((self.seed_gain, self.seed_gain_se) if self.stage is SeedStage.TRAINING
                     else (self.contribution, self.contribution_se))
        if value is None:
            return None
        return value - z * (se or 0.0)


@frozen(kw_only=True)
class EpochReport:
    """Raw measurements of one finished epoch of one episode."""

    episode: int
    epoch: int  # 1-based
    max_epochs: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    host_params: int
    seed_params: int  # live + fossilized seed parameters
    # A parametrised tuple converts like tuple() and tells mypy what callers may pass.
    slots: tuple[SlotReport, ...] = field(converter=tuple[SlotReport, ...])
    rollbacks: int = 0
    max_seeds: int = 1

    @property
    def live_seeds(self) -> int:
        return sum(1 for s in self.slots if s.live)


@frozen(kw_only=True)
class TrainingSignals:
    """An :class:`EpochReport` plus history-aware signals derived by a tracker."""

    report: EpochReport
    best_accuracy: float
    accuracy_delta: float
    loss_delta: float
    smoothed_delta: float
    plateau_epochs: int
    epochs_since_cull: int
    accuracy_history: tuple[float, ...] = field(converter=tuple[float, ...])
    loss_history: tuple[float, ...] = field(converter=tuple[float, ...])
