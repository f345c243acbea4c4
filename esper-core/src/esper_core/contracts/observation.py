"""The controller's observation: a versioned, fixed-size, normalised float vector (DESIGN §3).

Layout = global features followed by ``n_slots`` blocks of per-slot features. Each feature has
a name, an index and a scale: ``value / scale``, clipped to ``[-CLIP, CLIP]``. Learned
policies record :data:`OBSERVATION_SCHEMA_VERSION` in their checkpoints and refuse to run
against another layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from attrs import frozen

from esper_core.contracts.reports import SlotReport, TrainingSignals
from esper_core.contracts.stages import SeedStage

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: v2 added each slot's ``contribution_se`` and ``seed_gain_se``: the gates and the heuristic
#: decide on lower confidence bounds (measure − z·se), so without the standard errors a learner
#: saw two states the heuristic treats differently (fossilize, or wait) as one
#: (docs/learned_controllers.md, "What IQL could not see").
OBSERVATION_SCHEMA_VERSION = 2
HISTORY = 5
CLIP = 5.0


@frozen
class Feature:
    name: str
    index: int
    scale: float


def _hist(values: tuple[float, ...], i: int, default: float) -> float:
    # Oldest-first window of the last HISTORY values, left-padded with the default.
    padded = (default,) * (HISTORY - len(values[-HISTORY:])) + values[-HISTORY:]
    return padded[i]


def _accuracy_at(i: int) -> Callable[[TrainingSignals], float]:
    return lambda s: _hist(s.accuracy_history, i, 0.0)


def _loss_at(i: int) -> Callable[[TrainingSignals], float]:
    return lambda s: _hist(s.loss_history, i, 0.0)


def _in_stage(stage: SeedStage) -> Callable[[SlotReport, TrainingSignals], float]:
    return lambda r, s: float(r.stage is stage)


_GLOBAL: list[tuple[str, float, Callable[[TrainingSignals], float]]] = [
    ("epoch_fraction", 1.0, lambda s: s.report.epoch / s.report.max_epochs),
    ("val_accuracy", 100.0, lambda s: s.report.val_accuracy),
    ("best_accuracy", 100.0, lambda s: s.best_accuracy),
    ("accuracy_delta", 10.0, lambda s: s.accuracy_delta),
    ("smoothed_delta", 10.0, lambda s: s.smoothed_delta),
    ("train_loss", 10.0, lambda s: s.report.train_loss),
    ("val_loss", 10.0, lambda s: s.report.val_loss),
    ("loss_delta", 1.0, lambda s: s.loss_delta),
    ("plateau_epochs", 10.0, lambda s: s.plateau_epochs),
    ("epochs_since_cull", 10.0, lambda s: min(s.epochs_since_cull, 50)),
    ("live_seed_fraction", 1.0, lambda s: s.report.live_seeds / max(1, len(s.report.slots))),
    ("seed_capacity_left", 1.0,
     lambda s: max(0, s.report.max_seeds - s.report.live_seeds) / max(1, s.report.max_seeds)),
    ("param_growth", 1.0, lambda s: s.report.seed_params / max(1, s.report.host_params)),
    *[(f"accuracy_hist_{i}", 100.0, _accuracy_at(i)) for i in range(HISTORY)],
    *[(f"loss_hist_{i}", 10.0, _loss_at(i)) for i in range(HISTORY)],
]

_STAGES = [s for s in SeedStage if s is not SeedStage.UNKNOWN]

_SLOT: list[tuple[str, float, Callable[[SlotReport, TrainingSignals], float]]] = [
    *[(f"stage_{st.name.lower()}", 1.0, _in_stage(st)) for st in _STAGES],
    ("epochs_in_stage", 10.0, lambda r, s: r.epochs_in_stage),
    ("alpha", 1.0, lambda r, s: r.alpha),
    ("contribution", 10.0, lambda r, s: r.contribution or 0.0),
    ("seed_gain", 10.0, lambda r, s: r.seed_gain or 0.0),
    ("contribution_se", 10.0, lambda r, s: r.contribution_se or 0.0),
    ("seed_gain_se", 10.0, lambda r, s: r.seed_gain_se or 0.0),
    ("gradient_ratio", 10.0, lambda r, s: r.gradient_ratio),
    ("seed_param_fraction", 1.0, lambda r, s: r.seed_params / max(1, s.report.host_params)),
    (
        "improvement_since_germination",
        10.0,
        lambda r, s: 0.0
        if r.accuracy_at_germination is None
        else s.report.val_accuracy - r.accuracy_at_germination,
    ),
]


@frozen
class ObservationLayout:
    """The documented layout of the observation vector for ``n_slots`` slots."""

    n_slots: int
    version: int = OBSERVATION_SCHEMA_VERSION

    @property
    def global_features(self) -> list[Feature]:
        return [Feature(name, i, scale) for i, (name, scale, _) in enumerate(_GLOBAL)]

    @property
    def slot_features(self) -> list[Feature]:
        return [Feature(name, i, scale) for i, (name, scale, _) in enumerate(_SLOT)]

    @property
    def size(self) -> int:
        return len(_GLOBAL) + self.n_slots * len(_SLOT)

    def features(self) -> list[Feature]:
        """Every feature with its absolute index (per-slot names get a ``slotK.`` prefix)."""
        out = list(self.global_features)
        base = len(_GLOBAL)
        for k in range(self.n_slots):
            for f in self.slot_features:
                out.append(Feature(f"slot{k}.{f.name}", base + k * len(_SLOT) + f.index, f.scale))
        return out

    def build(self, signals: TrainingSignals) -> list[float]:
        """The observation vector of one environment."""
        if len(signals.report.slots) != self.n_slots:
            raise ValueError(
                f"observation layout has {self.n_slots} slots, report has {len(signals.report.slots)}"
            )
        values = [fn(signals) / scale for _, scale, fn in _GLOBAL]
        for slot in signals.report.slots:
            values.extend(fn(slot, signals) / scale for _, scale, fn in _SLOT)
        return [max(-CLIP, min(CLIP, float(v))) for v in values]

    def build_batch(self, batch: Sequence[TrainingSignals]) -> torch.Tensor:
        """Observations of many environments at once, as a ``(len(batch), size)`` float tensor."""
        import torch

        return torch.tensor([self.build(s) for s in batch], dtype=torch.float32).reshape(
            len(batch), self.size
        )
