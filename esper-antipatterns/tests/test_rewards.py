from __future__ import annotations

import pytest

from esper_antipatterns.plugin import esper_register_reward_terms
from esper_antipatterns.rewards import occurrences, signature_penalty
from esper_antipatterns.signatures import PENALTIES, Signature
from esper_core.contracts.decisions import Decision
from esper_core.contracts.protocols import RewardContext
from esper_core.rewards.function import RewardFunction
from esper_core.rewards.terms import builtin_reward_terms
from esper_core.testing.conformance import RewardTermConformance, sample_reports

TERMS = {t.name: t for t in esper_register_reward_terms()}


class TestNanInf(RewardTermConformance):
    spec = TERMS["antipattern_nan_inf"]


class TestGradientCollapse(RewardTermConformance):
    spec = TERMS["antipattern_gradient_collapse"]


class TestGradientExplosion(RewardTermConformance):
    spec = TERMS["antipattern_gradient_explosion"]


class TestPlateau(RewardTermConformance):
    spec = TERMS["antipattern_plateau"]


class TestCostWithoutBenefit(RewardTermConformance):
    spec = TERMS["antipattern_cost_without_benefit"]


def ctx(*anomalies) -> RewardContext:
    return RewardContext(report=sample_reports(2, epochs=1)[0], previous=None,
                         decision=Decision.wait("test"), decision_applied=True, anomalies=anomalies)


def test_penalties_match_the_document() -> None:
    assert {s.value: p for s, p in PENALTIES.items()} == {
        "nan_inf": -100.0, "gradient_collapse": -10.0, "gradient_explosion": -10.0,
        "plateau": -5.0, "cost_without_benefit": -1.0}
    assert {t.presets["shaped"] for t in TERMS.values()} == {1.0}
    assert set(TERMS) == {f"antipattern_{s.value}" for s in Signature}


def test_each_term_counts_its_signature_per_seed() -> None:
    c = ctx(("a", "nan_inf"), ("b", "nan_inf"), ("a", "nan_inf"), ("a", "plateau"),
            (None, "gradient_explosion"), ("b", "something_else"))
    values = {name: spec.compute(c) for name, spec in TERMS.items()}
    assert values == {"antipattern_nan_inf": -200.0, "antipattern_gradient_collapse": 0.0,
                      "antipattern_gradient_explosion": -10.0, "antipattern_plateau": -5.0,
                      "antipattern_cost_without_benefit": 0.0}
    assert occurrences(c, "nan_inf") == 2
    assert signature_penalty(ctx(), Signature.PLATEAU) == 0.0
    with pytest.raises(ValueError):
        occurrences(c, "not_a_signature")


def test_weights_in_the_shaped_preset_and_overrides() -> None:
    specs = builtin_reward_terms() + list(TERMS.values())
    c = ctx(("a", "gradient_collapse"), ("b", "cost_without_benefit"))
    shaped = RewardFunction(specs, preset="shaped")(c)
    assert shaped.terms["antipattern_gradient_collapse"] == -10.0
    assert shaped.terms["antipattern_cost_without_benefit"] == -1.0
    tuned = RewardFunction(specs, preset="shaped", weights={"antipattern_gradient_collapse": 0.5})(c)
    assert tuned.terms["antipattern_gradient_collapse"] == -5.0
    assert tuned.total == pytest.approx(shaped.total + 5.0)
    sparse = RewardFunction(specs, preset="sparse")(c)
    assert not any(name.startswith("antipattern_") for name in sparse.terms)
