"""Functional tests: every anti-pattern still works as a module (seed 000, "Functional Tests")."""

from __future__ import annotations

import pytest
import torch

from esper_antipatterns import estimates
from esper_antipatterns.catalog import ANTIPATTERNS, BY_NAME
from esper_antipatterns.plugin import esper_register_blueprints
from esper_core.testing.conformance import BlueprintConformance

SPECS = {spec.name: spec for spec in esper_register_blueprints()}


class _Conformance(BlueprintConformance):
    # Smaller than the defaults (the fast lane shares 2 cores); still covers width 1 and 1×1 maps.
    widths = (1, 8, 16)
    sizes = (1, 6, 12)


class TestCorrelatedNoise(_Conformance):
    spec = SPECS["correlated_noise"]


class TestAsymmetricBottleneck(_Conformance):
    spec = SPECS["asymmetric_bottleneck"]


class TestMomentumDampener(_Conformance):
    spec = SPECS["momentum_dampener"]


class TestSigmoidSandwich(_Conformance):
    spec = SPECS["sigmoid_sandwich"]


class TestGainAmplifier(_Conformance):
    spec = SPECS["gain_amplifier"]


class TestDeepLinearStack(_Conformance):
    spec = SPECS["deep_linear_stack"]


class TestExpensiveIdentity(_Conformance):
    spec = SPECS["expensive_identity"]


class TestRedundantEnsemble(_Conformance):
    spec = SPECS["redundant_ensemble"]


class TestKaimingMismatch(_Conformance):
    spec = SPECS["kaiming_mismatch"]


class TestDivisionByFeature(_Conformance):
    spec = SPECS["division_by_feature"]

    def test_shape_preserved_and_finite(self) -> None:
        # Seed 000: "Fails within first forward pass" — only the shape is promised.
        for width, size in self._cases():
            x = self.make_input(width, size)
            assert self.build(width)(x).shape == x.shape


def test_the_ten_are_registered_at_their_indices() -> None:
    expected = ["correlated_noise", "asymmetric_bottleneck", "momentum_dampener", "sigmoid_sandwich",
                "gain_amplifier", "deep_linear_stack", "expensive_identity", "redundant_ensemble",
                "kaiming_mismatch", "division_by_feature"]
    specs = esper_register_blueprints()
    assert [s.name for s in specs] == expected
    assert [s.action_index for s in specs] == list(range(24, 34))
    for spec in specs:
        assert spec.topology == "cnn" and spec.is_antipattern and not spec.identity_at_init
        assert set(spec.metadata) == {"category", "severity", "lesson", "expected_signature"}
        assert spec.metadata == BY_NAME[spec.name].metadata()


@pytest.mark.parametrize("entry", ANTIPATTERNS, ids=lambda a: a.name)
@pytest.mark.parametrize("width", [1, 2, 7, 8, 9, 16, 33])
def test_shape_and_exact_estimate_for_odd_widths(entry, width: int) -> None:
    torch.manual_seed(0)
    module = SPECS[entry.name].factory(width=width)
    x = torch.randn(3, width, 3, 5)
    assert module(x).shape == x.shape
    assert sum(p.numel() for p in module.parameters()) == getattr(estimates, entry.name)(width)


@pytest.mark.parametrize("entry", ANTIPATTERNS, ids=lambda a: a.name)
def test_survives_a_forward_pass_with_spatial_size_one_and_batch_one(entry) -> None:
    module = SPECS[entry.name].factory(width=4)
    x = torch.rand(1, 4, 1, 1) + 0.5  # positive: even the divider survives a positive input
    y = module(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "8"])
@pytest.mark.parametrize("entry", ANTIPATTERNS, ids=lambda a: a.name)
def test_bad_widths_are_rejected(entry, bad) -> None:
    with pytest.raises(ValueError, match="width"):
        SPECS[entry.name].factory(width=bad)
    with pytest.raises(ValueError, match="width"):
        SPECS[entry.name].param_estimate(bad)


def test_factories_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        SPECS["gain_amplifier"].factory(8)
