import itertools

import pytest

from esper_core.builtin.plugin import esper_register_reward_terms
from esper_core.contracts import Decision, EpochReport, Op, RewardContext, SeedStage, SlotReport
from esper_core.errors import ConfigError, PluginError, UnknownNameError
from esper_core.rewards import RewardFunction
from esper_core.rewards import terms as t
from esper_core.testing import RewardTermConformance

SPECS = {s.name: s for s in esper_register_reward_terms()}


def report(acc, stages=(), contributions=(), seed_params=0, epoch=3):
    slots = [
        SlotReport(slot=f"s{i}", index=i, width=8, stage=stage, contribution=c)
        for i, (stage, c) in enumerate(zip(stages, contributions, strict=True))
    ]
    return EpochReport(episode=0, epoch=epoch, max_epochs=10, train_loss=1.0, val_loss=1.0, val_accuracy=acc,
                       host_params=1000, seed_params=seed_params, slots=slots)


def ctx(rep, previous=None, decision=None, applied=True, **kw):
    return RewardContext(report=rep, previous=previous, decision=decision or Decision.wait("w"),
                         decision_applied=applied, **kw)


def test_credited_contribution_sums_blended_contributions_only():
    rep = report(60.0, [SeedStage.BLENDING, SeedStage.TRAINING, SeedStage.PROBATIONARY], [2.0, 9.0, -0.5])
    assert t.credited_contribution(rep, 50.0) == pytest.approx(1.5)
    # the first step has no previous report: the potential before it is 0
    assert t.counterfactual_attribution(ctx(rep, start_accuracy=50.0)) == pytest.approx(1.5)


def test_ransomware_guard_zeroes_positive_credit_when_total_got_worse():
    rep = report(40.0, [SeedStage.BLENDING, SeedStage.SHADOWING], [5.0, -1.0])
    assert t.credited_contribution(rep, 50.0) == pytest.approx(-1.0)


def test_counterfactual_credit_is_potential_based_so_a_culled_seed_pays_it_back():
    """Germinate, blend (contribution 3 for three epochs), cull: the episode's counterfactual
    terms sum to 0 — what the old per-step credit paid 9 for. A seed kept blended to the
    end pays its credit back at the terminal step too: the credit guides, it is not an objective."""
    dormant = report(50.0, [SeedStage.DORMANT], [None])
    blended = report(55.0, [SeedStage.BLENDING], [3.0])
    culled = report(52.0, [SeedStage.CULLED], [None])
    reports = [dormant, blended, blended, blended, culled]
    culled_total = sum(t.counterfactual_attribution(ctx(now, previous=before, start_accuracy=50.0))
                       for before, now in itertools.pairwise(reports))
    assert culled_total == pytest.approx(0.0, abs=1e-9)
    kept = [dormant, blended, blended, blended, blended]
    steps = list(itertools.pairwise(kept))
    kept_total = sum(t.counterfactual_attribution(ctx(now, previous=before, start_accuracy=50.0,
                                                      terminal=i == len(steps) - 1))
                     for i, (before, now) in enumerate(steps))
    assert kept_total == pytest.approx(culled_total, abs=1e-9)
    assert t.counterfactual_attribution(ctx(blended, previous=blended, start_accuracy=50.0)) == 0.0
    assert t.counterfactual_attribution(ctx(culled, previous=blended, start_accuracy=50.0)) == pytest.approx(-3.0)


def test_stage_shaping_is_potential_based():
    before = report(50, [SeedStage.TRAINING, SeedStage.DORMANT], [None, None])
    after = report(50, [SeedStage.BLENDING, SeedStage.GERMINATED], [None, None])
    expected = (3 - 2) + (1 - 0)
    assert t.stage_shaping(ctx(after, previous=before)) == pytest.approx(expected)
    assert t.stage_shaping(ctx(after)) == pytest.approx(4)  # before the first step every slot is dormant
    culled = report(50, [SeedStage.CULLED, SeedStage.GERMINATED], [None, None])
    assert t.stage_shaping(ctx(culled, previous=after)) == pytest.approx(-3)


@pytest.mark.parametrize("last_stage", [SeedStage.FOSSILIZED, SeedStage.PROBATIONARY, SeedStage.CULLED])
def test_shaping_terms_sum_to_zero_over_an_episode_whatever_seeds_it_ends_with(last_stage):
    """Terminal potential 0 (Ng et al. 1999): keeping seeds to the end earns no shaping of its
    own, so the return ranks policies by the unshaped terms — accuracy, rent, costs."""
    path = [SeedStage.DORMANT, SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING,
            SeedStage.SHADOWING, SeedStage.PROBATIONARY, last_stage]
    contributions = [None, None, None, 2.0, 2.0, 2.0, 2.0 if last_stage is SeedStage.PROBATIONARY else None]
    reports = [report(50.0 + i, [stage], [c], epoch=i + 1) for i, (stage, c) in enumerate(zip(path, contributions,
                                                                                                  strict=True))]
    for term in (t.stage_shaping, t.counterfactual_attribution):
        total = sum(term(ctx(now, previous=before, start_accuracy=50.0, terminal=i == len(path) - 1))
                         for i, (before, now) in enumerate(itertools.pairwise([None, *reports])))
        assert total == pytest.approx(0.0, abs=1e-9), term.__name__


def test_rent_costs_terminal_and_rollbacks():
    rep = report(70.0, seed_params=250)
    assert t.parameter_rent(ctx(rep)) == pytest.approx(-0.025)  # 25 % of the host, 10-epoch episode
    germ = Decision(op=Op.GERMINATE, slot=0, blueprint="cnn:norm", reason="r")
    assert t.action_cost(ctx(rep, decision=germ)) == -1.0
    assert t.action_cost(ctx(rep, decision=germ, applied=False)) == 0.0
    assert t.terminal_accuracy(ctx(rep, terminal=True)) == 70.0
    assert t.terminal_accuracy(ctx(rep)) == 0.0
    assert t.rollback_penalty(ctx(rep, rollbacks=2)) == -2.0


def test_reward_function_weights_presets_and_overrides():
    rep = report(70.0, seed_params=100)
    shaped = RewardFunction(SPECS.values())
    result = shaped(ctx(rep, terminal=True, rollbacks=1))
    assert result.terms["terminal_accuracy"] == pytest.approx(7.0)
    assert result.terms["param_rent"] == pytest.approx(-0.01)
    assert result.terms["rollback_penalty"] == pytest.approx(-1.0)
    assert result.total == pytest.approx(sum(result.terms.values()))
    sparse = RewardFunction(SPECS.values(), preset="sparse", weights={"param_rent": 10.0})
    assert set(sparse.weights) == {"terminal_accuracy", "rollback_penalty", "param_rent"}
    assert sparse(ctx(rep)).terms["param_rent"] == pytest.approx(-0.1)


def test_reward_function_errors():
    with pytest.raises(UnknownNameError, match="known reward presets: minimal, shaped, sparse"):
        RewardFunction(SPECS.values(), preset="dense")
    with pytest.raises(UnknownNameError, match="reward term"):
        RewardFunction(SPECS.values(), weights={"bonus": 1.0})
    with pytest.raises(ConfigError, match="finite"):
        RewardFunction(SPECS.values(), weights={"param_rent": float("inf")})
    bad = SPECS["param_rent"].__class__(name="bad", compute=lambda c: float("nan"), description="d",
                                        presets={"shaped": 1.0})
    with pytest.raises(PluginError, match="non-finite"):
        RewardFunction([*SPECS.values(), bad])(ctx(report(1.0)))


class TestCounterfactualConformance(RewardTermConformance):
    spec = SPECS["counterfactual"]


class TestShapingConformance(RewardTermConformance):
    spec = SPECS["stage_shaping"]


class TestRentConformance(RewardTermConformance):
    spec = SPECS["param_rent"]


class TestActionCostConformance(RewardTermConformance):
    spec = SPECS["action_cost"]


class TestTerminalConformance(RewardTermConformance):
    spec = SPECS["terminal_accuracy"]


class TestRollbackConformance(RewardTermConformance):
    spec = SPECS["rollback_penalty"]
