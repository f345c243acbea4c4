"""The failure_signatures observer: gradients and parameters of live seeds → anomalies."""

from __future__ import annotations

import pytest
import torch

from esper_antipatterns.observer import FailureSignatureObserver
from esper_antipatterns.plugin import esper_register_observers
from esper_core.contracts import EpochReport, SeedStage, SlotReport
from esper_core.contracts.seeds import SeedView
from esper_core.errors import ConfigError


class FakeModel:
    """Just what the observer reads from a MorphogeneticModel: the public seed views."""

    def __init__(self, params):
        self.params = {k: [p for p, _ in v] for k, v in params.items()}
        self.norms = {k: v[0][1] if v else None for k, v in params.items()}

    def seed_views(self):
        return tuple(SeedView(slot=name, stage=SeedStage.TRAINING, blueprint="cnn:sigmoid_sandwich",
                              last_grad_norm=self.norms[name], parameters=params)
                     for name, params in self.params.items())


def _param(value, grad_norm):
    return torch.nn.Parameter(torch.full((3,), value)), grad_norm


def _report(stage=SeedStage.TRAINING):
    slot = SlotReport(slot="block2", index=0, width=8, stage=stage, blueprint="cnn:sigmoid_sandwich",
                      seed_params=3, contribution=0.0)
    return EpochReport(episode=0, epoch=3, max_epochs=10, train_loss=1.0, val_loss=1.0, val_accuracy=50.0,
                       host_params=1000, seed_params=3, slots=(slot,))


def _signatures(params, stage=SeedStage.TRAINING):
    observer = FailureSignatureObserver.from_options(model=FakeModel({"block2": params}), options={})
    try:
        return {e.signature for e in observer.after_epoch(report=_report(stage))}
    finally:
        observer.close()


def test_healthy_seed_raises_nothing():
    assert _signatures([_param(1.0, 0.1)]) == set()


def test_collapsed_exploding_and_non_finite_seeds():
    assert "gradient_collapse" in _signatures([_param(1.0, 1e-12)])
    assert "gradient_explosion" in _signatures([_param(1.0, 1e5)])
    assert "nan_inf" in _signatures([_param(1.0, float("inf"))])
    assert "nan_inf" in _signatures([_param(float("nan"), 0.1)])


def test_dormant_slots_are_not_observed():
    assert _signatures([_param(float("nan"), 0.1)], stage=SeedStage.DORMANT) == set()


def test_registered_and_validated():
    (spec,) = esper_register_observers()
    assert spec.name == "failure_signatures"
    with pytest.raises(ConfigError, match="^observer 'failure_signatures' option 'collapse_below' = -1.0 is invalid; "
                                          "expected a finite number > 0$"):
        spec.factory(model=FakeModel({}), options={"collapse_below": -1.0})
    with pytest.raises(ConfigError, match="^observer 'failure_signatures': unknown option 'nonsense'; allowed options: "
                                          "collapse_below, cost_min_epochs"):
        spec.factory(model=FakeModel({}), options={"nonsense": 1})
    with pytest.raises(ConfigError, match="^observer 'failure_signatures': collapse_below .* must be below"):
        spec.factory(model=FakeModel({}), options={"collapse_below": 2.0, "explode_above": 1.0})
