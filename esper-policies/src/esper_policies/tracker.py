"""SignalTracker: history-aware training signals derived from a sequence of epoch reports.

The run engine hands a controller one raw :class:`~esper_core.contracts.EpochReport` per
epoch. Decisions need trends (is the host stuck?), per-seed evidence (is *this* seed helping?)
and memory (when was the last cull?). The tracker derives them, for every slot, with bounded
memory, and is pure Python so that every policy (and the observation builder) can use it.

Signal definitions (accuracies in points, 0–100):

* ``accuracy_delta`` = val accuracy now − previous epoch; ``loss_delta`` = val loss now −
  previous epoch (negative is better). Both 0 on the first epoch of an episode.
* ``smoothed_delta`` = EMA of ``accuracy_delta``: ``s_t = α·Δ_t + (1 − α)·s_{t−1}``, with
  ``α = smoothing`` (default 0.5), seeded with the first real delta rather than 0 so the early
  value is not biased towards "plateau". α = 0.5 cuts the standard deviation of white
  accuracy noise to ≈ 0.58× while lagging a real change by only about one epoch.
* ``plateau_epochs`` = consecutive epochs whose ``smoothed_delta`` is below
  ``plateau_threshold`` (default 0.5 points); it resets to 0 as soon as smoothed improvement
  returns. The first epoch (no delta yet) is never a plateau epoch.
* ``epochs_since_cull`` = epoch now − epoch at which the last cull was seen; before any cull,
  epochs since the episode started (the start counts as epoch 0). Use :attr:`last_cull_epoch`
  to know whether a cull happened at all.
* Culls are detected from slot stages: a slot now CULLED or EMBARGOED that was in neither
  stage in the previous report, or a slot that was live and is now RESETTING or DORMANT.
  This catches the controller's own culls, probation timeouts and governor culls alike.

Per-slot signals (:class:`SlotSignals`, for every slot, not just the first): the stage's
*improvement measure* is ``seed_gain`` in GERMINATED/TRAINING (what the seed would add if
switched on; its output is not mixed in yet) and the counterfactual ``contribution`` from
BLENDING on. "Accuracy now minus accuracy when blending started" is never used: it credits the
seed with whatever the host learned meanwhile.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs
import structlog
from attrs import field, frozen

from esper_core.contracts.reports import EpochReport, SlotReport, TrainingSignals
from esper_core.contracts.stages import BLENDED_STAGES, LIVE_STAGES, SeedStage
from esper_core.options import int_at_least, number_in

logger = structlog.get_logger(__name__)

_CULL_STAGES = frozenset({SeedStage.CULLED, SeedStage.EMBARGOED})
# A seed can only leave a live stage for these through a cull (possibly with zero-epoch
# embargo/resetting dwell, so the CULLED report itself may be skipped).
_AFTER_CULL = frozenset({SeedStage.RESETTING, SeedStage.DORMANT})
_PRE_BLEND_STAGES = frozenset({SeedStage.GERMINATED, SeedStage.TRAINING})


def improvement_measure(slot: SlotReport, z: float = 0.0) -> tuple[str, float | None]:
    """The stage's improvement measure of a seed: ``(source name, value or None)``.

    ``seed_gain`` before blending, the counterfactual ``contribution`` from BLENDING on, each
    as its lower confidence bound ``value − z·se`` (the point estimate when ``z`` is 0 or the
    standard error unknown, as the gates do); ``("none", None)`` for slots without a live seed.
    """
    if slot.stage in _PRE_BLEND_STAGES:
        value, se, name = slot.seed_gain, slot.seed_gain_se, "seed_gain"
    elif slot.stage in BLENDED_STAGES:
        value, se, name = slot.contribution, slot.contribution_se, "contribution"
    else:
        return "none", None
    if value is None:
        return name, None
    if z and se is not None:
        return f"{name} − {z:g}·se", value - z * se
    return name, value


@frozen(kw_only=True)
class CullEvent:
    """A cull the tracker saw happen between two reports."""

    slot: int
    slot_name: str
    blueprint: str | None
    #: report epoch in which the slot was first seen culled.
    epoch: int
    #: the last live stage the tracker saw for that seed (None when it never saw it live).
    from_stage: SeedStage | None


@frozen(kw_only=True)
class SlotSignals:
    """Derived signals of one slot at the latest epoch."""

    index: int
    name: str
    stage: SeedStage
    blueprint: str | None
    epochs_in_stage: int
    alpha: float
    #: "seed_gain", "contribution" or "none" (see :func:`improvement_measure`).
    improvement_source: str
    #: this epoch's improvement measure in points; None when not measured or no live seed.
    improvement: float | None
    #: best improvement measure seen since the seed entered its current stage.
    best_improvement_in_stage: float | None
    #: consecutive epochs (reports seen) in the current stage whose improvement measure was
    #: missing or ≤ the tracker's ``min_seed_improvement``; 0 for slots without a live seed.
    epochs_without_improvement: int
    #: val accuracy when the seed germinated (from the report, else the accuracy of the
    #: epoch before the seed first appeared live).
    accuracy_at_germination: float | None
    #: val accuracy now − accuracy at germination (negative = the model got worse).
    accuracy_change_since_germination: float | None
    #: the improvement measure over the current stage, oldest first, bounded by the window.
    improvement_history: tuple[float, ...] = field(converter=tuple[float, ...])

    @property
    def live(self) -> bool:
        return self.stage in LIVE_STAGES


class _SlotState:
    """Mutable per-slot memory between reports (one seed at a time)."""

    __slots__ = ("accuracy_at_germination", "best", "blueprint", "history", "stage", "without")

    def __init__(self, window: int) -> None:
        self.stage: SeedStage | None = None
        self.blueprint: str | None = None
        self.accuracy_at_germination: float | None = None
        self.best: float | None = None
        self.without = 0
        self.history: deque[float] = deque(maxlen=window)

    def enter_stage(self, stage: SeedStage) -> None:
        self.stage = stage
        self.best = None
        self.without = 0
        self.history.clear()


@frozen(kw_only=True)
class TrackerConfig:
    """Tracker settings (the heuristic's options of the same names feed these)."""

    #: length of every bounded history (accuracy, loss, per-slot improvement).
    history_window: int = field(default=10, validator=int_at_least(1))
    #: smoothed improvement below this many points per epoch counts as a plateau epoch.
    plateau_threshold: float = field(default=0.5, validator=number_in(0.0))
    #: EMA weight α of the newest accuracy delta (1.0 = no smoothing).
    smoothing: float = field(default=0.5, validator=number_in(0.0, 1.0, low_open=True))
    #: a seed's improvement measure must exceed this (points) to count as improving.
    min_seed_improvement: float = field(default=0.0, validator=number_in(-100.0, 100.0))
    #: the improvement measure is the stage measure minus this many standard errors.
    confidence_z: float = field(default=0.0, validator=number_in(0.0, 10.0))


class SignalTracker:
    """Feed it one :class:`EpochReport` per epoch; it returns :class:`TrainingSignals`."""

    def __init__(self, config: TrackerConfig | None = None, **overrides: Any) -> None:
        """``overrides`` replace single :class:`TrackerConfig` fields, e.g. ``history_window=3``."""
        base = config or TrackerConfig()
        self.config: TrackerConfig = attrs.evolve(base, **overrides) if overrides else base
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next report starts a new episode."""
        window = self.config.history_window
        self._episode: int | None = None
        self._previous: EpochReport | None = None
        self._signals: TrainingSignals | None = None
        self._accuracy: deque[float] = deque(maxlen=window)
        self._loss: deque[float] = deque(maxlen=window)
        self._best = float("-inf")
        self._smoothed: float | None = None
        self._plateau = 0
        self._last_cull_epoch: int | None = None
        self._cull_count = 0
        self._new_culls: tuple[CullEvent, ...] = ()
        self._slot_states: dict[int, _SlotState] = {}
        self._slots: tuple[SlotSignals, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        """A deep copy of everything :meth:`reset` clears (for run checkpoints)."""
        return copy.deepcopy({k: v for k, v in vars(self).items() if k != "config"})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of a tracker with the same config."""
        expected = set(vars(self)) - {"config"}
        if set(state) != expected:
            raise ValueError(f"tracker state has keys {sorted(state)}, expected {sorted(expected)}")
        vars(self).update(copy.deepcopy(dict(state)))

    # -- read-only views -------------------------------------------------------------------

    @property
    def signals(self) -> TrainingSignals | None:
        """The signals of the latest report (None before the first update)."""
        return self._signals

    @property
    def slots(self) -> tuple[SlotSignals, ...]:
        """Per-slot signals of the latest report, one per slot, ordered by slot index."""
        return self._slots

    def slot(self, index: int) -> SlotSignals:
        for s in self._slots:
            if s.index == index:
                return s
        raise KeyError(f"no slot with index {index} in the latest report")

    @property
    def new_culls(self) -> tuple[CullEvent, ...]:
        """Culls first seen in the latest report."""
        return self._new_culls

    @property
    def last_cull_epoch(self) -> int | None:
        """Epoch at which the latest cull of this episode was seen; None if none yet."""
        return self._last_cull_epoch

    @property
    def cull_count(self) -> int:
        return self._cull_count

    # -- update ----------------------------------------------------------------------------

    def update(self, report: EpochReport) -> TrainingSignals:
        """Record ``report`` and return its signals.

        Feeding the same report twice (a controller asked twice in one epoch) returns the same
        signals without counting the epoch again. A report from another episode starts a new
        one; an epoch going backwards within an episode is an error.
        """
        previous = self._previous
        if previous is not None and report.episode != self._episode:
            logger.debug("tracker_new_episode", old=self._episode, new=report.episode)
            self.reset()
            previous = None
        if previous is not None and self._signals is not None:
            if report.epoch == previous.epoch:
                if report == previous:
                    return self._signals
                raise ValueError(
                    f"epoch {report.epoch} of episode {report.episode} was already recorded "
                    "with different measurements"
                )
            if report.epoch < previous.epoch:
                raise ValueError(
                    f"epoch went backwards ({previous.epoch} → {report.epoch}) within episode "
                    f"{report.episode}; call reset() to start a new episode"
                )
        self._episode = report.episode

        accuracy_delta = 0.0 if previous is None else report.val_accuracy - previous.val_accuracy
        loss_delta = 0.0 if previous is None else report.val_loss - previous.val_loss
        if previous is not None:
            alpha = self.config.smoothing
            self._smoothed = (
                accuracy_delta
                if self._smoothed is None
                else alpha * accuracy_delta + (1.0 - alpha) * self._smoothed
            )
            if self._smoothed < self.config.plateau_threshold:
                self._plateau += 1
            else:
                self._plateau = 0
        self._best = max(self._best, report.val_accuracy)
        self._accuracy.append(report.val_accuracy)
        self._loss.append(report.val_loss)

        self._new_culls = self._detect_culls(report, previous)
        if self._new_culls:
            self._last_cull_epoch = report.epoch
            self._cull_count += len(self._new_culls)
        self._slots = tuple(
            self._update_slot(slot, report, previous) for slot in sorted(report.slots, key=_index)
        )

        since = report.epoch - (self._last_cull_epoch if self._last_cull_epoch is not None else 0)
        self._signals = TrainingSignals(
            report=report,
            best_accuracy=self._best,
            accuracy_delta=accuracy_delta,
            loss_delta=loss_delta,
            smoothed_delta=0.0 if self._smoothed is None else self._smoothed,
            plateau_epochs=self._plateau,
            epochs_since_cull=since,
            accuracy_history=tuple(self._accuracy),
            loss_history=tuple(self._loss),
        )
        self._previous = report
        return self._signals

    def _detect_culls(
        self, report: EpochReport, previous: EpochReport | None
    ) -> tuple[CullEvent, ...]:
        before = {} if previous is None else {s.index: s for s in previous.slots}
        culls = []
        for slot in report.slots:
            old = before.get(slot.index)
            old_stage = None if old is None else old.stage
            newly_culled = slot.stage in _CULL_STAGES and old_stage not in _CULL_STAGES
            left_live = old_stage in LIVE_STAGES and slot.stage in _AFTER_CULL
            if not (newly_culled or left_live):
                continue
            state = self._slot_states.get(slot.index)
            blueprint = slot.blueprint or (old.blueprint if old is not None else None)
            if blueprint is None and state is not None:
                blueprint = state.blueprint
            from_stage = old_stage if old_stage in LIVE_STAGES else None
            culls.append(CullEvent(slot=slot.index, slot_name=slot.slot, blueprint=blueprint,
                                   epoch=report.epoch, from_stage=from_stage))
            logger.debug("tracker_cull_seen", slot=slot.slot, blueprint=blueprint,
                         epoch=report.epoch,
                         from_stage=None if from_stage is None else from_stage.name)
        return tuple(culls)

    def _update_slot(
        self, slot: SlotReport, report: EpochReport, previous: EpochReport | None
    ) -> SlotSignals:
        state = self._slot_states.setdefault(slot.index, _SlotState(self.config.history_window))
        was_live = state.stage in LIVE_STAGES
        if slot.live and (not was_live or slot.blueprint != state.blueprint):
            # A new seed: germinated after the previous epoch's decision, so the accuracy
            # "at germination" is the previous report's unless the engine measured it.
            state.accuracy_at_germination = (
                slot.accuracy_at_germination
                if slot.accuracy_at_germination is not None
                else (previous.val_accuracy if previous is not None else report.val_accuracy)
            )
            state.enter_stage(slot.stage)
        elif slot.stage != state.stage:
            state.enter_stage(slot.stage)
        if not slot.live:
            state.accuracy_at_germination = None
        elif slot.accuracy_at_germination is not None:
            state.accuracy_at_germination = slot.accuracy_at_germination
        state.blueprint = slot.blueprint

        source, value = improvement_measure(slot, self.config.confidence_z)
        if slot.live:
            if value is not None:
                state.history.append(value)
                state.best = value if state.best is None else max(state.best, value)
            if value is None or value <= self.config.min_seed_improvement:
                state.without += 1
            else:
                state.without = 0
        germ = state.accuracy_at_germination
        return SlotSignals(
            index=slot.index,
            name=slot.slot,
            stage=slot.stage,
            blueprint=slot.blueprint,
            epochs_in_stage=slot.epochs_in_stage,
            alpha=slot.alpha,
            improvement_source=source,
            improvement=value,
            best_improvement_in_stage=state.best,
            epochs_without_improvement=state.without,
            accuracy_at_germination=germ,
            accuracy_change_since_germination=None if germ is None else report.val_accuracy - germ,
            improvement_history=tuple(state.history),
        )


def _index(slot: SlotReport) -> int:
    return slot.index
