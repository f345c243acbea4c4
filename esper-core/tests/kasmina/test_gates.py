import math

import pytest
import torch
from kasmina_helpers import build_model, linear_blueprint, set_stage, toy_data
from torch import nn

from esper_core.builtin.plugin import esper_register_gates
from esper_core.contracts import GateResult, GateSpec, GateThresholds, SeedStage
from esper_core.errors import PluginError
from esper_core.kasmina import GateContext, GateSuite, GradientRatioTracker, gradient_ratio
from esper_core.kasmina import gates as g


def ctx(model, name, *, blueprint=None, budget=None, topology="cnn", thresholds=None):
    return GateContext(model=model, slot=model.slot(name), thresholds=thresholds or GateThresholds(),
                       blueprint=blueprint, param_budget=budget, topology=topology, epoch=3)


def test_g0_pass_and_failures():
    model = build_model()
    bp = linear_blueprint()  # 72 parameters at width 8
    ok = g.g0_blueprint_fits(ctx(model, "p0", blueprint=bp, budget=100))
    assert ok.passed and ok.measurements["param_estimate"] == 72
    assert not g.g0_blueprint_fits(ctx(model, "p0", blueprint=None)).passed
    wrong = g.g0_blueprint_fits(ctx(model, "p0", blueprint=linear_blueprint(topology="transformer")))
    assert not wrong.passed and "topology" in wrong.reason
    set_stage(model, "p1", SeedStage.FOSSILIZED)  # 72 used, fossilized counts
    over = g.g0_blueprint_fits(ctx(model, "p0", blueprint=bp, budget=100))
    assert not over.passed and over.measurements["budget_left"] == 28


def test_g1_needs_a_forward_then_checks_shape_and_finiteness():
    model = build_model()
    set_stage(model, "p0", SeedStage.GERMINATED)
    first = g.g1_shape_and_finite(ctx(model, "p0"))
    assert not first.passed and "forward" in first.reason
    model(toy_data(1)[0][0])
    assert g.g1_shape_and_finite(ctx(model, "p0")).passed
    slot = model.slot("p0")
    slot.seed = nn.Linear(8, 5)
    assert "does not match" in g.g1_shape_and_finite(ctx(model, "p0")).reason
    slot.seed = nn.Linear(8, 8)
    with torch.no_grad():
        slot.seed.weight.fill_(float("nan"))
    assert "not finite" in g.g1_shape_and_finite(ctx(model, "p0")).reason
    slot.seed = nn.Linear(3, 3)  # raises on the probe
    assert "failed on a probe" in g.g1_shape_and_finite(ctx(model, "p0")).reason


def test_g1_probe_leaves_batchnorm_stats_and_rng_alone():
    model = build_model()
    set_stage(model, "p0", SeedStage.GERMINATED,
              blueprint=linear_blueprint(factory=lambda *, width: nn.BatchNorm1d(width)))
    model(toy_data(1)[0][0])
    bn = model.slot("p0").seed
    before = bn.running_mean.clone()
    state = torch.get_rng_state()
    assert g.g1_shape_and_finite(ctx(model, "p0")).passed
    assert torch.equal(bn.running_mean, before) and bn.training
    assert torch.equal(torch.get_rng_state(), state)


def test_g2_each_condition():  # under the "better" test
    model = build_model()
    set_stage(model, "p0", SeedStage.TRAINING)
    st = model.slot("p0").state
    th = GateThresholds(g2_min_epochs=2, g2_min_improvement=0.0, g2_gradient_ratio=0.05, g2_test="better")
    res = g.g2_gradient_readiness(ctx(model, "p0", thresholds=th))
    assert not res.passed and "not measured" in res.reason and "TRAINING epochs" in res.reason
    st.epochs_in_stage, st.seed_gain, st.gradient.value = 2, 0.5, 0.2
    assert g.g2_gradient_readiness(ctx(model, "p0", thresholds=th)).passed
    st.seed_gain = -1.0
    assert "seed gain" in g.g2_gradient_readiness(ctx(model, "p0", thresholds=th)).reason
    st.seed_gain, st.gradient.value = 0.5, 0.01
    res = g.g2_gradient_readiness(ctx(model, "p0", thresholds=th))
    assert not res.passed and res.measurements["gradient_ratio"] == 0.01


def test_gradient_ratio_edge_cases():
    seed = torch.tensor(3.0)
    assert float(gradient_ratio(seed, torch.tensor(0.0), 4, 100)) == 0.0
    assert float(gradient_ratio(seed, torch.tensor(5e-9), 4, 100)) == 0.0
    assert float(gradient_ratio(seed, torch.tensor(1e-6), 4, 100)) == 10.0  # clamped
    # (3/2) / (1/10) = 15 → clamped; (0.1/2)/(1/10) = 0.5 exactly
    assert float(gradient_ratio(torch.tensor(0.1), torch.tensor(1.0), 4, 100)) == pytest.approx(0.5)


def test_gradient_ema_is_bias_corrected():
    tracker = GradientRatioTracker()
    tracker.update(torch.tensor(0.1), torch.tensor(1.0), 4, 100)
    assert tracker.sync() == pytest.approx(0.5)  # not 0.05: first reading is unbiased
    for _ in range(5):
        tracker.update(torch.tensor(0.2), torch.tensor(1.0), 4, 100)
    expected_ema = 0.9**6 * 0 + sum(0.1 * 0.9**i * (1.0 if i < 5 else 0.5) for i in range(6))
    assert tracker.sync() == pytest.approx(expected_ema / (1 - 0.9**6))
    assert math.isfinite(tracker.value)


def test_g3_alpha_and_epochs():
    model = build_model()
    set_stage(model, "p0", SeedStage.BLENDING)
    slot = model.slot("p0")
    slot.alpha, slot.state.epochs_in_stage = 0.5, 5
    assert "alpha" in g.g3_blending_complete(ctx(model, "p0")).reason
    slot.alpha, slot.state.epochs_in_stage = 0.99, 1
    assert "blending epochs" in g.g3_blending_complete(ctx(model, "p0")).reason
    slot.state.epochs_in_stage = 3
    assert g.g3_blending_complete(ctx(model, "p0")).passed


def test_g4_window_and_sign():
    model = build_model()
    set_stage(model, "p0", SeedStage.SHADOWING)
    st = model.slot("p0").state
    th = GateThresholds(g4_window=2)
    st.epochs_in_stage = 2
    assert "no contribution" in g.g4_stability(ctx(model, "p0", thresholds=th)).reason
    st.contributions += [(1, SeedStage.BLENDING, -5.0), (2, SeedStage.SHADOWING, 1.0),
                         (3, SeedStage.SHADOWING, -0.1)]
    res = g.g4_stability(ctx(model, "p0", thresholds=th))
    assert not res.passed and res.measurements["min_contribution"] == -0.1
    st.contributions.append((4, SeedStage.SHADOWING, 0.2))
    st.contributions.append((5, SeedStage.SHADOWING, 0.0))
    assert g.g4_stability(ctx(model, "p0", thresholds=th)).passed
    with torch.no_grad():
        next(model.slot("p0").seed.parameters()).fill_(float("inf"))
    assert "not finite" in g.g4_stability(ctx(model, "p0", thresholds=th)).reason


def test_g5_contribution_threshold_and_health():
    model = build_model()
    set_stage(model, "p0", SeedStage.PROBATIONARY)
    st = model.slot("p0").state
    th = GateThresholds(g5_min_contribution=1.0, confidence_z=0.0)
    assert not g.g5_contribution(ctx(model, "p0", thresholds=th)).passed
    st.contribution = 0.5
    assert "lower bound +0.50 ≤ +1.00" in g.g5_contribution(ctx(model, "p0", thresholds=th)).reason
    st.contribution = 2.0
    assert g.g5_contribution(ctx(model, "p0", thresholds=th)).passed
    with torch.no_grad():
        next(model.slot("p0").seed.parameters()).fill_(float("nan"))
    assert not g.g5_contribution(ctx(model, "p0", thresholds=th)).passed


def test_g2_and_g5_need_the_measure_to_clear_its_threshold_by_z_standard_errors():
    model = build_model()
    set_stage(model, "p0", SeedStage.TRAINING)
    st = model.slot("p0").state
    th = GateThresholds(g2_min_epochs=0, g2_gradient_ratio=0.0, g2_min_improvement=0.0, confidence_z=2.0,
                        g2_test="better")
    st.seed_gain, st.seed_gain_se = 0.8, 0.5  # lower bound 0.8 − 2·0.5 < 0: could be noise
    res = g.g2_gradient_readiness(ctx(model, "p0", thresholds=th))
    assert not res.passed and "lower bound -0.20" in res.reason
    assert res.measurements["seed_gain_lower"] == pytest.approx(-0.2)
    st.seed_gain_se = 0.3  # 0.8 − 0.6 = 0.2 ≥ 0
    assert g.g2_gradient_readiness(ctx(model, "p0", thresholds=th)).passed
    set_stage(model, "p0", SeedStage.PROBATIONARY)
    st.contribution, st.contribution_se = 1.5, 1.0
    assert not g.g5_contribution(ctx(model, "p0", thresholds=th)).passed
    st.contribution_se = 0.5
    res = g.g5_contribution(ctx(model, "p0", thresholds=th))
    assert res.passed and res.measurements["contribution_lower"] == pytest.approx(0.5)


def test_g3_and_g4_refuse_a_measurably_harmful_seed_but_not_a_noisy_one():
    model = build_model()
    set_stage(model, "p0", SeedStage.BLENDING)
    slot = model.slot("p0")
    slot.alpha, slot.state.epochs_in_stage = 1.0, 5
    th = GateThresholds(g3_min_alpha=0.95, g3_min_epochs=5, g4_window=1, confidence_z=2.0)
    slot.state.contribution, slot.state.contribution_se = -0.6, 0.5  # upper bound +0.4: noise
    assert g.g3_blending_complete(ctx(model, "p0", thresholds=th)).passed
    slot.state.contribution_se = 0.2  # upper bound −0.2: measurably harmful
    res = g.g3_blending_complete(ctx(model, "p0", thresholds=th))
    assert not res.passed and "measurably harmful" in res.reason
    set_stage(model, "p0", SeedStage.SHADOWING)
    slot.state.epochs_in_stage = 1
    slot.state.contributions.append((1, SeedStage.SHADOWING, -0.6))
    assert not g.g4_stability(ctx(model, "p0", thresholds=th)).passed
    slot.state.contribution_se = 0.5
    assert g.g4_stability(ctx(model, "p0", thresholds=th)).passed


def _always(passed, name):
    def check(context):
        return GateResult(gate=name, target=SeedStage.TRAINING, passed=passed, reason=name)
    return check


def test_suite_replacement_and_additive_rules():
    builtin = esper_register_gates()
    suite = GateSuite.from_specs(builtin, "cnn")
    assert suite.names(SeedStage.TRAINING) == ("g1_shape_and_finite",)
    extra = GateSpec(name="extra", target=SeedStage.TRAINING, check=_always(False, "extra"),
                     description="x", topology="*")
    other_topo = GateSpec(name="tx", target=SeedStage.TRAINING, check=_always(False, "tx"),
                          description="x", topology="transformer")
    repl = GateSpec(name="repl", target=SeedStage.TRAINING, check=_always(True, "repl"),
                    description="x", topology="cnn", replaces_default=True)
    suite = GateSuite.from_specs([*builtin, extra, other_topo, repl], "cnn")
    assert suite.names(SeedStage.TRAINING) == ("repl", "extra")
    model = build_model()
    result = suite.evaluate(SeedStage.TRAINING, ctx(model, "p0"))
    assert not result.passed and result.gate == "repl+extra" and result.reason == "extra"
    tsuite = GateSuite.from_specs([*builtin, extra, other_topo, repl], "transformer")
    assert tsuite.names(SeedStage.TRAINING) == ("g1_shape_and_finite", "extra", "tx")


def test_suite_rejects_gate_returning_wrong_type():
    bad = GateSpec(name="bad", target=SeedStage.TRAINING, check=lambda c: True, description="x")
    with pytest.raises(PluginError, match="bad"):
        GateSuite.from_specs([bad], "cnn").evaluate(SeedStage.TRAINING, ctx(build_model(), "p0"))




def test_g2_not_worse_blends_a_noisy_seed_but_not_a_measurably_harmful_one():
    model = build_model()
    set_stage(model, "p0", SeedStage.TRAINING)
    st = model.slot("p0").state
    th = GateThresholds(g2_min_epochs=0, g2_gradient_ratio=0.0, confidence_z=2.0, g2_test="not_worse")
    st.seed_gain, st.seed_gain_se = -0.6, 0.5  # upper bound +0.4: could be noise
    res = g.g2_gradient_readiness(ctx(model, "p0", thresholds=th))
    assert res.passed and "upper bound +0.40" in res.reason
    st.seed_gain_se = 0.2  # upper bound −0.2
    res = g.g2_gradient_readiness(ctx(model, "p0", thresholds=th))
    assert not res.passed and "measurably harmful" in res.reason
    with pytest.raises(ValueError):
        GateThresholds(g2_test="maybe")
