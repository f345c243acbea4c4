"""The ``failure_signatures`` training observer: runs the :class:`FailureDetector` on every live
seed after each epoch, so anomalies reach telemetry and the anti-pattern penalty terms.

The seed's gradient norm is read from the gradients its parameters hold after the epoch's last
training step (one sample per epoch, taken without adding work to the training loop).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from esper_core.contracts.events import TelemetryEvent
from esper_core.contracts.reports import EpochReport
from esper_core.errors import ConfigError
from esper_antipatterns.detectors import DetectorConfig, FailureDetector


class FailureSignatureObserver:
    """Observer protocol implementation around one :class:`FailureDetector` per episode."""

    def __init__(self, model: Any, config: DetectorConfig) -> None:
        self.model = model
        self.detector = FailureDetector(config)

    @classmethod
    def from_options(cls, *, model: Any, options: Mapping[str, Any]) -> FailureSignatureObserver:
        try:
            config = DetectorConfig(**options)
        except TypeError as exc:
            raise ConfigError(f"[observers.failure_signatures] {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"[observers.failure_signatures] {exc}") from None
        return cls(model, config)

    def _seed_state(self, slot: str) -> tuple[float | None, bool]:
        params = list(self.model.seed_parameters(slot))
        finite = all(bool(torch.isfinite(p).all()) for p in params)
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return None, finite
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
        return norm, finite and norm == norm and norm != float("inf")

    def after_epoch(self, *, report: EpochReport) -> Sequence[TelemetryEvent]:
        grad_norms: dict[str, float | None] = {}
        finite: dict[str, bool] = {}
        for slot in report.slots:
            if slot.live and slot.blueprint is not None:
                grad_norms[slot.slot], finite[slot.slot] = self._seed_state(slot.slot)
        return self.detector.observe_report(report, grad_norms=grad_norms, finite=finite)

    def close(self) -> None:
        self.detector.reset()
