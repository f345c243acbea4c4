"""The ``failure_signatures`` training observer: runs the :class:`FailureDetector` on every live
seed after each epoch, so anomalies reach telemetry and the anti-pattern penalty terms.

The seed's gradient norm is the one Kasmina's trainer measured at the epoch's last training step
(``SeedView.last_grad_norm``; one sample per epoch, no extra work in the training loop).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from esper_antipatterns.detectors import DetectorConfig, FailureDetector
from esper_core.contracts.events import TelemetryEvent
from esper_core.contracts.reports import EpochReport
from esper_core.contracts.seeds import ObservedModel, SeedView
from esper_core.options import parse_options


class FailureSignatureObserver:
    """Observer protocol implementation around one :class:`FailureDetector` per episode."""

    def __init__(self, model: ObservedModel, config: DetectorConfig) -> None:
        self.model = model
        self.detector = FailureDetector(config)

    @classmethod
    def from_options(cls, *, model: ObservedModel, options: Mapping[str, Any]) -> FailureSignatureObserver:
        return cls(model, parse_options(DetectorConfig, options, owner="observer 'failure_signatures'"))

    @staticmethod
    def _seed_state(view: SeedView) -> tuple[float | None, bool]:
        finite = all(bool(torch.isfinite(p).all()) for p in view.parameters)
        norm = view.last_grad_norm
        if norm is None:
            return None, finite
        return norm, finite and math.isfinite(norm)

    def after_epoch(self, *, report: EpochReport) -> Sequence[TelemetryEvent]:
        grad_norms: dict[str, float | None] = {}
        finite: dict[str, bool] = {}
        views = {view.slot: view for view in self.model.seed_views()}
        for slot in report.slots:
            if slot.live and slot.blueprint is not None:
                grad_norms[slot.slot], finite[slot.slot] = self._seed_state(views[slot.slot])
        return self.detector.observe_report(report, grad_norms=grad_norms, finite=finite)

    def state_dict(self) -> dict[str, Any]:
        """The detector's per-seed histories (run checkpoints; see esper_core Stateful)."""
        return {"detector": copy.deepcopy(self.detector)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.detector = copy.deepcopy(state["detector"])

    def close(self) -> None:
        self.detector.reset()
