"""Functional tests: every anti-pattern still works as a module (seed 000, "Functional Tests")."""

from __future__ import annotations

import copy

import pytest
import torch

from esper_antipatterns import estimates
from esper_antipatterns.catalog import ANTIPATTERNS, BY_KEY, BY_NAME, TRANSFORMER_ANTIPATTERNS
from esper_antipatterns.plugin import esper_register_blueprints
from esper_core.contracts.specs import TopologySpec
from esper_core.testing.conformance import BlueprintConformance

SPECS = {spec.name: spec for spec in esper_register_blueprints() if spec.topology == "cnn"}
TRANSFORMER_SPECS = {spec.name: spec for spec in esper_register_blueprints() if spec.topology == "transformer"}
NAMES = ["correlated_noise", "asymmetric_bottleneck", "momentum_dampener", "sigmoid_sandwich",
         "gain_amplifier", "deep_linear_stack", "expensive_identity", "redundant_ensemble",
         "kaiming_mismatch", "division_by_feature"]


def _sequence_input(*, width: int, size: int, batch: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.randn(batch, size, width, generator=generator)


#: A transformer slot's input, ``(batch, sequence, C)``, without needing the transformer plugin.
SEQUENCE = TopologySpec(name="transformer", description="(batch, sequence, C)", example_input=_sequence_input)


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


class _TransformerConformance(BlueprintConformance):
    widths = (1, 8, 16)
    sizes = (1, 6, 12)
    topology = SEQUENCE


class TestTransformerCorrelatedNoise(_TransformerConformance):
    spec = TRANSFORMER_SPECS["correlated_noise"]


class TestTransformerAsymmetricBottleneck(_TransformerConformance):
    spec = TRANSFORMER_SPECS["asymmetric_bottleneck"]


class TestTransformerMomentumDampener(_TransformerConformance):
    spec = TRANSFORMER_SPECS["momentum_dampener"]


class TestTransformerSigmoidSandwich(_TransformerConformance):
    spec = TRANSFORMER_SPECS["sigmoid_sandwich"]


class TestTransformerGainAmplifier(_TransformerConformance):
    spec = TRANSFORMER_SPECS["gain_amplifier"]


class TestTransformerDeepLinearStack(_TransformerConformance):
    spec = TRANSFORMER_SPECS["deep_linear_stack"]


class TestTransformerExpensiveIdentity(_TransformerConformance):
    spec = TRANSFORMER_SPECS["expensive_identity"]


class TestTransformerRedundantEnsemble(_TransformerConformance):
    spec = TRANSFORMER_SPECS["redundant_ensemble"]


class TestTransformerKaimingMismatch(_TransformerConformance):
    spec = TRANSFORMER_SPECS["kaiming_mismatch"]


class TestTransformerDivisionByFeature(_TransformerConformance):
    spec = TRANSFORMER_SPECS["division_by_feature"]


def test_the_ten_are_registered_at_their_indices_in_both_topologies() -> None:
    specs = esper_register_blueprints()
    assert [s.name for s in specs] == NAMES + NAMES
    assert [s.topology for s in specs] == ["cnn"] * 10 + ["transformer"] * 10
    assert [s.action_index for s in specs] == [*range(24, 34), *range(24, 34)]
    for spec in specs:
        assert spec.is_antipattern and not spec.identity_at_init
        assert set(spec.metadata) == {"category", "severity", "lesson", "expected_signature"}
        assert spec.metadata == BY_KEY[spec.key].metadata()
    for cnn, transformer in zip(ANTIPATTERNS, TRANSFORMER_ANTIPATTERNS, strict=True):
        assert BY_NAME[cnn.name] is cnn
        assert (transformer.index, transformer.category, transformer.lesson, transformer.designed_signature) == (
            cnn.index, cnn.category, cnn.lesson, cnn.designed_signature)


@pytest.mark.parametrize("name", NAMES)
def test_transformer_forms_are_causal(name: str) -> None:
    """Changing a later token never changes an earlier one's output (the EMA and the noise are
    fixed before the batch is read), in training mode too."""
    module = TRANSFORMER_SPECS[name].factory(width=16)
    x = torch.rand(2, 6, 16) + 0.5
    changed = x.clone()
    changed[:, 4:] = torch.rand(2, 2, 16) + 3.0
    for training in (False, True):
        # A copy per pass: the dampener's EMA must be the same state for both inputs.
        a_module, b_module = copy.deepcopy(module).train(training), copy.deepcopy(module).train(training)
        torch.manual_seed(1)
        a = a_module(x)
        torch.manual_seed(1)
        b = b_module(changed)
        torch.testing.assert_close(a[:, :4], b[:, :4])


@pytest.mark.parametrize("width", [1, 2, 7, 8, 33])
@pytest.mark.parametrize("name", NAMES)
def test_transformer_forms_keep_shape_and_exact_estimate(name: str, width: int) -> None:
    torch.manual_seed(0)
    module = TRANSFORMER_SPECS[name].factory(width=width)
    x = torch.rand(3, 5, width) + 0.5
    assert module(x).shape == x.shape
    assert sum(p.numel() for p in module.parameters()) == TRANSFORMER_SPECS[name].param_estimate(width)


def test_transformer_momentum_dampener_reads_only_past_batches() -> None:
    module = TRANSFORMER_SPECS["momentum_dampener"].factory(width=4).train()
    first = module(torch.full((2, 3, 4), 10.0))
    # The EMA was 0 while the first batch was read: output = 0.01 · x.
    torch.testing.assert_close(first, torch.full((2, 3, 4), 0.1))
    torch.testing.assert_close(module.ema, torch.full((4,), 0.1))


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
