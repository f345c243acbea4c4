import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_testkit import KEYS, S, context, dormant, lifecycle_mask, mask, report, run, slot

from esper_core.contracts import Op, Policy
from esper_policies.heuristic import HeuristicConfig, HeuristicPolicy

A, B, C = KEYS


#: The plateau trigger of DESIGN §6, which most tests below exercise (the defaults germinate
#: from epoch 3 without a plateau; see test_default_trigger_is_early_and_needs_no_plateau).
PLATEAU = {"min_epochs_before_germinate": 5, "plateau_epochs_to_germinate": 3, "blueprint_choice": "rotate"}


def policy(**options):
    return HeuristicPolicy.from_context(context=context({**PLATEAU, **options}))


def default_policy(**options):
    return HeuristicPolicy.from_context(context=context(options))


def test_default_trigger_is_early_and_needs_no_plateau():
    decisions = run(default_policy(), [report(e, 40.0 + 3 * e) for e in range(1, 6)])
    epoch, d = first(decisions, Op.GERMINATE)
    assert epoch == 1
    assert d.reason.startswith("epoch 1 ≥ 1 (no plateau needed) after epoch 1: germinate")


def first(decisions, op):
    return next((i + 1, d) for i, d in enumerate(decisions) if d.op is op)


# -- germination -----------------------------------------------------------------------------


def test_germinates_on_a_flat_run_only_once_five_epochs_have_passed():
    decisions = run(policy(), [report(e, 50.0) for e in range(1, 8)])
    epoch, d = first(decisions, Op.GERMINATE)
    assert epoch == 5
    assert (d.slot, d.blueprint) == (0, A)
    assert "plateau 4 epochs ≥ 3 after epoch 5: germinate cnn:conv_light in slot 0 (layer1)" \
        in d.reason
    assert "epoch 4 < 5 before germinating" in decisions[3].reason
    assert all(d.op is Op.WAIT for d in decisions[:4])


def test_germinates_as_soon_as_the_plateau_is_long_enough_when_no_minimum_epoch():
    decisions = run(policy(min_epochs_before_germinate=0), [report(e, 50.0) for e in range(1, 6)])
    assert first(decisions, Op.GERMINATE)[0] == 4  # plateau epochs 1, 2, 3 at epochs 2, 3, 4
    assert "plateau 2 epochs < 3" in decisions[2].reason


def test_smoothed_plateau_lags_the_end_of_learning():
    accs = [10.0, 20.0, 30.0] + [30.0] * 10
    decisions = run(policy(), [report(e, a) for e, a in enumerate(accs, 1)])
    # smoothed Δ: 10, 10, 5, 2.5, 1.25, 0.625, 0.31 (plateau 1 at epoch 8) → 3 at epoch 10.
    assert first(decisions, Op.GERMINATE)[0] == 10
    assert "plateau 0 epochs < 3 (smoothed Δ +0.62 vs 0.5)" in decisions[6].reason


def test_never_germinates_while_accuracy_keeps_improving():
    decisions = run(policy(), [report(e, 40.0 + e) for e in range(1, 21)])
    assert all(d.op is Op.WAIT for d in decisions)
    assert "plateau 0 epochs < 3" in decisions[-1].reason
    assert decisions[-1].confidence == 1.0


def test_wait_confidence_falls_as_the_plateau_builds():
    decisions = run(policy(min_epochs_before_germinate=0), [report(e, 50.0) for e in range(1, 4)])
    assert [d.confidence for d in decisions[1:]] == pytest.approx([1 - 0.5 / 3, 1 - 1 / 3])


def test_germination_confidence_grows_with_the_plateau():
    p = policy(min_epochs_before_germinate=8)
    decisions = run(p, [report(e, 50.0) for e in range(1, 9)])
    # plateau 7 at epoch 8: 0.5 + 0.5·min(1, (7 − 3 + 1)/3) = 1.0
    assert decisions[-1].op is Op.GERMINATE and decisions[-1].confidence == 1.0
    assert run(policy(), [report(e, 50.0) for e in range(1, 6)])[-1].confidence == pytest.approx(
        0.5 + 0.5 * 2 / 3)


def test_germination_blocked_by_the_mask_waits_and_says_why():
    reps = [report(e, 50.0, slots=[slot(0, S.TRAINING, seed_gain=1.0)]) for e in range(1, 8)]
    decisions = run(policy(), reps)
    assert all(d.op is Op.WAIT for d in decisions)
    reason = decisions[-1].reason
    assert "but the mask allows GERMINATE in no DORMANT slot (live seeds 1/1)" in reason
    assert "cnn:conv_light in slot 0 (layer1) TRAINING (seed_gain +1.00" in decisions[-1].reason
    p = policy()
    run(p, [report(e, 50.0) for e in range(1, 5)])
    d = p.decide(report=report(5, 50.0), mask=mask(germinate=[0], blueprints=[]))
    assert d.op is Op.WAIT and "the mask allows no blueprint" in d.reason


def test_embargo_blocks_germination_for_five_epochs_after_a_cull():
    stages = {**{e: S.TRAINING for e in range(1, 8)}, 8: S.CULLED,
              **{e: S.EMBARGOED for e in range(9, 13)}, 13: S.RESETTING, 14: S.DORMANT}
    reps = [report(e, 50.0, slots=[slot(0, st, seed_gain=1.0), slot(1)])
            for e, st in stages.items()]
    decisions = run(policy(), reps)
    assert [d.op for d in decisions[7:12]] == [Op.WAIT] * 5
    assert "embargo: last cull 0 epochs ago (epoch 8) < 5" in decisions[7].reason
    assert "embargo: last cull 4 epochs ago (epoch 8) < 5" in decisions[11].reason
    epoch, d = first(decisions, Op.GERMINATE)
    assert epoch == 13 and d.slot == 1  # slot 0 is still RESETTING


def test_embargo_length_is_an_option():
    stages = [S.TRAINING] * 6 + [S.CULLED, S.EMBARGOED]
    reps = [report(e, 50.0, slots=[slot(0, st, seed_gain=1.0), slot(1)])
            for e, st in enumerate(stages, 1)]
    decisions = run(policy(embargo_epochs_after_cull=1), reps)
    assert first(decisions, Op.GERMINATE)[0] == 8


# -- culling ---------------------------------------------------------------------------------


def test_culls_after_five_epochs_in_training_without_seed_gain():
    reps = [report(e, 50.0, slots=[slot(0, S.TRAINING, seed_gain=-0.1)]) for e in range(1, 7)]
    decisions = run(policy(), reps)
    epoch, d = first(decisions, Op.CULL)
    assert epoch == 5 and d.slot == 0
    assert d.reason.startswith(
        "no improvement for 5 epochs in TRAINING (≥ 5; seed_gain -0.10, needs > 0)")
    assert "cull cnn:conv_light in slot 0 (layer1)" in d.reason
    assert "4/5 epochs without improvement" in decisions[3].reason


def test_a_single_improving_epoch_restarts_the_count():
    gains = [-0.1] * 4 + [0.3] + [-0.1] * 5
    reps = [report(e, 50.0, slots=[slot(0, S.TRAINING, seed_gain=g)])
            for e, g in enumerate(gains, 1)]
    assert first(run(policy(), reps), Op.CULL)[0] == 10


def test_blending_is_judged_by_contribution_not_seed_gain_and_the_count_restarts_per_stage():
    reps = [report(e, 50.0, slots=[slot(0, S.TRAINING, seed_gain=-0.2)]) for e in range(1, 5)]
    reps += [report(e, 50.0, slots=[slot(0, S.BLENDING, seed_gain=3.0, contribution=-0.2)])
             for e in range(5, 10)]
    decisions = run(policy(), reps)
    epoch, d = first(decisions, Op.CULL)
    assert epoch == 9
    assert "in BLENDING (≥ 5; contribution -0.20" in d.reason


def test_a_helpful_blending_seed_is_never_culled_for_stagnation():
    reps = [report(e, 50.0, slots=[slot(0, S.BLENDING, contribution=1.2)]) for e in range(1, 15)]
    assert all(d.op is Op.WAIT for d in run(policy(), reps))


def test_probation_is_left_to_the_lifecycle_timeout():
    reps = [report(e, 50.0, slots=[slot(0, S.PROBATIONARY, contribution=-0.1)])
            for e in range(1, 10)]
    decisions = run(policy(), reps)
    assert all(d.op is Op.WAIT for d in decisions)
    assert "on probation: contribution -0.10 ≤ 0 to fossilize" in decisions[-1].reason


def test_culls_when_accuracy_dropped_more_than_two_points_since_germination():
    seed = {"contribution": 1.0, "acc_at_germ": 60.0}
    ok = run(policy(), [report(1, 58.0, slots=[slot(0, S.BLENDING, **seed)])])[0]
    assert ok.op is Op.WAIT  # exactly 2.0 is not more than 2
    d = run(policy(), [report(1, 57.9, slots=[slot(0, S.BLENDING, **seed)])])[0]
    assert d.op is Op.CULL and d.slot == 0
    assert d.reason.startswith("val accuracy 57.90 is 2.10 points below 60.00 at germination (> 2)")
    assert d.confidence == pytest.approx(0.525)
    big = run(policy(), [report(1, 50.0, slots=[slot(0, S.PROBATIONARY, **seed)])])[0]
    assert big.op is Op.CULL and big.confidence == 1.0  # applies in every live stage


def test_accuracy_drop_uses_the_accuracy_before_the_seed_appeared_when_the_engine_gives_none():
    reps = [report(1, 61.0), report(2, 58.5, slots=[slot(0, S.BLENDING, contribution=0.5)])]
    d = run(policy(), reps)[-1]
    assert d.op is Op.CULL and "2.50 points below 61.00" in d.reason


def test_a_seed_not_yet_in_the_forward_is_never_blamed_for_the_hosts_accuracy():
    reps = [report(1, 61.0), report(2, 55.0, slots=[slot(0, S.TRAINING, seed_gain=0.5)])]
    assert run(policy(), reps)[-1].op is Op.WAIT


def test_drop_threshold_is_an_option():
    rep = report(1, 57.0, slots=[slot(0, S.BLENDING, contribution=1.0, acc_at_germ=60.0)])
    assert run(policy(cull_if_accuracy_drops_by=5.0), [rep])[0].op is Op.WAIT


def test_masked_cull_falls_back_to_wait_with_the_reason():
    p = policy()
    rep = report(1, 50.0, slots=[slot(0, S.BLENDING, contribution=1.0, acc_at_germ=60.0)])
    d = p.decide(report=rep, mask=mask())
    assert d.op is Op.WAIT and d.confidence == 1.0
    assert "wanted CULL slot=0 [val accuracy 50.00 is 10.00 points below" in d.reason
    assert "but the mask forbids it" in d.reason


# -- fossilization ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contribution", "op"), [(0.51, Op.FOSSILIZE), (0.5, Op.WAIT), (None, Op.WAIT)]
)
def test_fossilizes_probationary_seeds_at_the_threshold(contribution, op):
    rep = report(1, 50.0, slots=[slot(0, S.PROBATIONARY, contribution=contribution)])
    d = run(policy(fossilize_min_contribution=0.5), [rep])[0]
    assert d.op is op
    if op is Op.FOSSILIZE:
        assert d.slot == 0 and d.confidence == pytest.approx(0.51)
        assert d.reason == ("contribution +0.51 > 0.5 in PROBATIONARY after epoch 1: "
                            "fossilize cnn:conv_light in slot 0 (layer1)")


@pytest.mark.parametrize(("contribution", "se", "op"), [
    (1.0, 0.7, Op.WAIT), (1.0, 0.6, Op.FOSSILIZE), (0.0, None, Op.WAIT), (0.1, None, Op.FOSSILIZE)])
def test_fossilizes_exactly_what_g5_would_accept(contribution, se, op):
    from esper_core.contracts import GateThresholds
    from esper_core.kasmina import GateContext, g5_contribution
    from esper_core.kasmina.slot import SlotState

    rep = report(1, 50.0, slots=[slot(0, S.PROBATIONARY, contribution=contribution, contribution_se=se)])
    assert run(policy(), [rep])[0].op is op

    class _Slot:  # the part of a slot G5 reads
        state = SlotState(contribution=contribution, contribution_se=se)
        seed = None

    passed = g5_contribution(GateContext(model=None, slot=_Slot(), thresholds=GateThresholds())).passed
    assert passed is (op is Op.FOSSILIZE)


@pytest.mark.parametrize(("stage", "measure"), [(S.PROBATIONARY, "contribution"), (S.TRAINING, "seed_gain")])
def test_the_observation_tells_apart_what_only_the_standard_error_separates(stage, measure):
    # The gates and the heuristic decide on measure − z·se: two states that differ only in the
    # standard error must look different to a learner, or it cannot learn (or clone) the rule.
    import torch

    from esper_policies.encoding import ObservationBuilder

    reports = [report(1, 50.0, slots=[slot(0, stage, **{measure: 1.0, f"{measure}_se": se})]) for se in (0.6, 0.7)]
    if stage is S.PROBATIONARY:
        assert [run(policy(), [r])[0].op for r in reports] == [Op.FOSSILIZE, Op.WAIT]
    first, second = (ObservationBuilder(1, 1).build([r]) for r in reports)
    assert not torch.equal(first, second)


def test_heuristic_statistics_default_to_the_gates():
    from esper_core.contracts import GateThresholds

    config, gates = HeuristicConfig(), GateThresholds()
    assert config.confidence_z == gates.confidence_z
    assert config.fossilize_min_contribution == gates.g5_min_contribution
    assert config.min_seed_improvement == gates.g2_min_improvement


def test_masked_fossilize_waits_and_cull_outranks_fossilize():
    p = policy()
    rep = report(1, 50.0, slots=[slot(0, S.PROBATIONARY, contribution=1.0)])
    d = p.decide(report=rep, mask=mask(cull=[0]))
    assert d.op is Op.WAIT and "wanted FOSSILIZE slot=0" in d.reason
    slots = [slot(0, S.PROBATIONARY, contribution=1.0),
             slot(1, S.BLENDING, contribution=0.5, acc_at_germ=60.0)]
    rep = report(1, 55.0, slots=slots, max_seeds=2)
    assert policy().decide(report=rep, mask=lifecycle_mask(rep)).describe() == "CULL slot=1"
    d = policy().decide(report=rep, mask=mask(2, fossilize=[0], cull=[0]))
    assert d.describe() == "FOSSILIZE slot=0" and "(masked first: CULL slot=1" in d.reason


# -- advancing -------------------------------------------------------------------------------


def test_advances_live_seeds_without_a_cull_reason_when_the_mask_offers_it():
    rep = report(1, 50.0, slots=[slot(0, S.TRAINING, seed_gain=0.4, epochs=3)])
    d = run(policy(), [rep], advance=True)[0]
    assert d.describe() == "ADVANCE slot=0"
    assert d.reason == ("TRAINING for 3 epochs, seed_gain +0.40, no cull reason after epoch 1: "
                        "advance cnn:conv_light in slot 0 (layer1) to BLENDING")
    assert d.confidence == pytest.approx(0.7)
    assert run(policy(advance_when_allowed=False), [rep], advance=True)[0].op is Op.WAIT


def test_advance_prefers_the_deepest_stage_and_never_advances_probation():
    slots = [slot(0, S.TRAINING, seed_gain=1.0), slot(1, S.SHADOWING, contribution=1.0)]
    rep = report(1, 50.0, slots=slots, max_seeds=2)
    assert run(policy(), [rep], advance=True)[0].describe() == "ADVANCE slot=1"
    rep = report(1, 50.0, slots=[slot(0, S.PROBATIONARY, contribution=-0.2)])
    d = policy().decide(report=rep, mask=mask(advance=[0], cull=[0], fossilize=[0]))
    assert d.op is Op.WAIT


def test_a_seed_due_for_culling_is_not_advanced():
    reps = [report(e, 50.0, slots=[slot(0, S.TRAINING, seed_gain=0.0)]) for e in range(1, 6)]
    decisions = run(policy(), reps, advance=True)
    assert [d.op for d in decisions] == [Op.ADVANCE] * 4 + [Op.CULL]


# -- slots and blueprints --------------------------------------------------------------------


def flat_until_germination(p, n_slots=3, **mask_kw):
    for e in range(1, 5):
        p.decide(report=report(e, 50.0, slots=dormant(n_slots)), mask=mask(n_slots))
    return report(5, 50.0, slots=dormant(n_slots), max_seeds=n_slots)


def test_prefers_the_deepest_dormant_slot_the_mask_allows():
    p = policy()
    rep = flat_until_germination(p)
    assert p.decide(report=rep, mask=mask(3, germinate=[0, 1, 2])).slot == 2
    assert p.decide(report=rep, mask=mask(3, germinate=[0, 1])).slot == 1


def test_rotate_slot_choice_cycles():
    p = policy(slot_choice="rotate")
    rep = flat_until_germination(p)
    picks = [p.decide(report=rep, mask=mask(3, germinate=[0, 1, 2])).slot for _ in range(4)]
    assert picks == [0, 1, 2, 0]
    assert p.decide(report=rep, mask=mask(3, germinate=[0, 2])).slot == 2


def test_seed_in_slot_two_while_slot_one_is_empty():
    reps = [report(e, 50.0, slots=[slot(0), slot(1, S.TRAINING, seed_gain=-0.5)])
            for e in range(1, 6)]
    p = policy()
    decisions = run(p, reps)
    assert p.tracker.slot(1).epochs_without_improvement == 5
    assert p.tracker.slot(0).epochs_without_improvement == 0
    assert decisions[-1].describe() == "CULL slot=1"
    assert "in slot 1 (layer2)" in decisions[-1].reason
    # With room for two seeds the empty slot 0 is germinated into while slot 1 trains.
    reps = [report(e, 50.0, slots=[slot(0), slot(1, S.TRAINING, seed_gain=1.0)], max_seeds=2)
            for e in range(1, 6)]
    assert run(policy(), reps)[-1].describe() == "GERMINATE slot=0 blueprint=cnn:conv_light"


def test_a_cull_that_wins_over_germination_does_not_move_the_blueprint_rotation():
    slots = [slot(0), slot(1, S.BLENDING, contribution=0.5, acc_at_germ=60.0)]
    p = policy()
    for e in range(1, 5):
        p.decide(report=report(e, 56.0, slots=slots, max_seeds=2), mask=mask(2))
    rep = report(5, 56.0, slots=slots, max_seeds=2)
    assert p.decide(report=rep, mask=lifecycle_mask(rep)).describe() == "CULL slot=1"
    d = p.decide(report=rep, mask=mask(2, germinate=[0]))
    assert d.describe() == "GERMINATE slot=0 blueprint=cnn:conv_light"
    assert "(masked first: CULL slot=1" in d.reason


def culled_at(epoch, n_culled, n_slots=3):
    """Reports 1..epoch where slots 0..n_culled-1 hold conv_light seeds culled at ``epoch``."""
    def slots(stage):
        return [slot(i, stage, seed_gain=1.0) if i < n_culled else slot(i) for i in range(n_slots)]

    before = [report(e, 50.0, slots=slots(S.TRAINING), max_seeds=n_slots) for e in range(1, epoch)]
    return [*before, report(epoch, 50.0, slots=slots(S.CULLED), max_seeds=n_slots)]


OLD_PENALTIES = {"blueprint_penalty_on_cull": 2.0, "blueprint_penalty_decay": 0.5}


def test_cull_penalty_is_charged_once_and_decays_once_per_epoch():
    p = policy(**OLD_PENALTIES)
    reps = culled_at(3, 1)
    run(p, reps)
    run(p, reps[-1:])  # asked again in the epoch the cull is seen: not charged twice
    assert p.rotation.penalties == {A: 2.0}
    rep4 = report(4, 50.0, slots=[slot(0, S.EMBARGOED), slot(1), slot(2)], max_seeds=3)
    for _ in range(3):  # asked three times in epoch 4: still one decay, no new charge
        p.decide(report=rep4, mask=lifecycle_mask(rep4))
    assert p.rotation.penalties == {A: 1.0}


def test_two_picks_in_one_epoch_decay_the_penalty_once():
    p = policy(embargo_epochs_after_cull=0, **OLD_PENALTIES)
    run(p, culled_at(3, 1))
    rep = report(5, 50.0, slots=[slot(0, S.EMBARGOED), slot(1), slot(2)], max_seeds=3)
    first_pick = p.decide(report=rep, mask=lifecycle_mask(rep))
    second_pick = p.decide(report=rep, mask=lifecycle_mask(rep))
    assert (first_pick.blueprint, second_pick.blueprint) == (A, B)
    assert p.rotation.penalties == {A: 0.5}  # 2 at epoch 3, ×0.5 for epochs 4 and 5 only


def test_a_culled_blueprint_is_avoided_for_the_rest_of_the_episode():
    p = policy(embargo_epochs_after_cull=0)
    run(p, culled_at(3, 1))
    rep = report(20, 50.0, slots=[slot(0, S.EMBARGOED), slot(1), slot(2)], max_seeds=3)
    d = p.decide(report=rep, mask=lifecycle_mask(rep))
    assert p.rotation.penalties == {A: 4.0} and d.blueprint == B
    assert "skipped cnn:conv_light (penalty > 3)" in d.reason


def test_blueprint_above_three_is_skipped_and_least_penalised_is_the_fallback():
    p = policy(embargo_epochs_after_cull=0, **OLD_PENALTIES)
    decisions = run(p, culled_at(5, 2))  # two conv_light culls seen in epoch 5: penalty 4
    assert p.rotation.penalties == {A: 4.0}
    d = decisions[-1]
    assert d.describe() == "GERMINATE slot=2 blueprint=cnn:attention"
    assert "skipped cnn:conv_light (penalty > 3)" in d.reason
    p = policy(embargo_epochs_after_cull=0, **OLD_PENALTIES)
    reps = culled_at(5, 2)
    run(p, reps[:-1])
    d = p.decide(report=reps[-1], mask=mask(3, germinate=[2], blueprints=[A]))
    assert d.blueprint == A
    assert ("every allowed blueprint penalised above 3: least penalised cnn:conv_light "
            "(penalty 4.00)") in d.reason


def test_penalty_options_change_the_arithmetic():
    p = policy(blueprint_penalty_on_cull=5.0, blueprint_penalty_decay=1.0)
    run(p, culled_at(3, 1))
    p.decide(report=report(9, 50.0, slots=[slot(0, S.EMBARGOED), slot(1), slot(2)], max_seeds=3),
             mask=mask(3))
    assert p.rotation.penalties == {A: 5.0}


# -- bookkeeping, episodes, telemetry --------------------------------------------------------


def test_decision_history_is_bounded_and_records_epochs():
    p = policy(decision_history=3)
    run(p, [report(e, 50.0 + e) for e in range(1, 7)])
    assert [r.epoch for r in p.history] == [4, 5, 6]
    assert all(r.episode == 0 for r in p.history)


def test_reset_and_new_episodes_clear_episode_state():
    p = policy()
    run(p, culled_at(3, 1))
    p.reset(episode=1)
    assert p.rotation.penalties == {} and p.tracker.signals is None
    run(p, culled_at(3, 1))  # reports still say episode 0: a new episode again
    d = p.decide(report=report(1, 50.0, episode=7), mask=mask())
    assert d.op is Op.WAIT and p.rotation.penalties == {} and p.tracker.last_cull_epoch is None


def test_each_decision_is_logged_with_its_reason():
    p = policy()
    with structlog.testing.capture_logs() as logs:
        d = p.decide(report=report(1, 50.0), mask=mask())
    (event,) = [e for e in logs if e["event"] == "heuristic_decision"]
    assert event["op"] == "WAIT" and event["reason"] == d.reason and event["epoch"] == 1


def test_is_a_policy():
    p = default_policy()
    assert isinstance(p, Policy) and p.name == "heuristic"
    assert p.config == HeuristicConfig()


# -- every decision is allowed, whatever the reports and masks ----------------------------------

stages = st.sampled_from([s for s in S if s is not S.UNKNOWN])
metric = st.none() | st.floats(-5, 5, allow_nan=False)


@st.composite
def scenario(draw):
    n = draw(st.integers(1, 3))
    epochs = draw(st.integers(1, 6))
    reps, masks = [], []
    for e in range(1, epochs + 1):
        slots = [slot(i, draw(stages), contribution=draw(metric), seed_gain=draw(metric),
                      acc_at_germ=draw(st.none() | st.floats(40, 60)),
                      epochs=draw(st.integers(0, 6)))
                 for i in range(n)]
        max_seeds = draw(st.integers(1, 3))
        reps.append(report(e, draw(st.floats(40, 60)), slots=slots, max_seeds=max_seeds))
        rows = {op: draw(st.lists(st.integers(0, n - 1), max_size=n)) for op in Op}
        masks.append(mask(n, germinate=rows[Op.GERMINATE], advance=rows[Op.ADVANCE],
                          cull=rows[Op.CULL], fossilize=rows[Op.FOSSILIZE],
                          blueprints=draw(st.lists(st.sampled_from(KEYS), max_size=3))))
    return reps, masks


@settings(max_examples=100, deadline=None)
@given(scenario(), st.sampled_from(["deepest", "rotate"]))
def test_heuristic_only_returns_allowed_decisions(case, slot_choice):
    p = policy(min_epochs_before_germinate=0, plateau_epochs_to_germinate=1,
               embargo_epochs_after_cull=0, slot_choice=slot_choice)
    for rep, m in zip(*case, strict=True):
        d = p.decide(report=rep, mask=m)
        assert m.allows(d)
        assert 0.0 <= d.confidence <= 1.0 and d.reason


# -- cost-aware germination -------------------------------------------------------------------


def _priced(rep, costs):
    """lifecycle_mask(rep) carrying ``costs[slot][blueprint]``."""
    import attrs

    return attrs.evolve(lifecycle_mask(rep), costs=costs)


def _flat(n_slots, epoch=3, host_params=10_000, seed_params=0, slots=None):
    import attrs

    rep = report(epoch, 50.0, slots=slots or dormant(n_slots), max_seeds=1)
    return attrs.evolve(rep, host_params=host_params, seed_params=seed_params)


def test_germinates_the_blueprint_where_it_costs_fewest_parameters():
    p = default_policy()
    rep = _flat(3)
    d = p.decide(report=rep, mask=_priced(rep, [[150, 40, 10], [600, 80, 20], [2400, 160, 40]]))
    assert d.describe() == f"GERMINATE slot=0 blueprint={A}"
    assert "150 parameters of 10000 allowed" in d.reason
    # "deepest" keeps the old behaviour
    d = default_policy(slot_choice="deepest").decide(report=rep, mask=_priced(rep, [[150] * 3, [600] * 3, [2400] * 3]))
    assert d.slot == 2


def test_never_lets_seeds_outgrow_the_host():
    rep = _flat(2, host_params=1000, seed_params=700)
    # conv_light costs 400 anywhere: over the 300 left; attention (50) fits only in slot 1.
    d = default_policy().decide(report=rep, mask=_priced(rep, [[400, 500, 10], [400, 50, 10]]))
    assert d.describe() == f"GERMINATE slot=1 blueprint={B}"
    assert "300 allowed" in d.reason
    d = default_policy(max_added_fraction=0.5).decide(report=rep, mask=_priced(rep, [[400, 500, 10], [400, 50, 10]]))
    assert d.op is Op.WAIT
    assert "no allowed blueprint fits in a free slot within 0.5× the host's 1000 parameters" in d.reason


def test_after_a_fossilization_the_same_blueprint_is_tried_first():
    def grown(epoch):
        return _flat(2, epoch=epoch, slots=[slot(0, S.FOSSILIZED, blueprint=A), slot(1)])

    for repeat, expected in ((True, A), (False, B)):
        p = default_policy(repeat_fossilized_blueprint=repeat, blueprint_choice="rotate")
        assert p.decide(report=_flat(2), mask=lifecycle_mask(_flat(2))).blueprint == A  # rotation → B
        d = p.decide(report=grown(6), mask=lifecycle_mask(grown(6)))  # A's seed has fossilized
        assert (d.slot, d.blueprint) == (1, expected)


def test_after_a_fossilization_the_same_blueprint_is_tried_first_in_preference_order_too():
    # B was germinated because A was not offered; once B's seed fossilizes, B comes before A,
    # the top of the catalog order, for the rest of the episode (until B is culled).
    def grown(epoch):
        return _flat(3, epoch=epoch, slots=[slot(0, S.FOSSILIZED, blueprint=B), slot(1), slot(2)])

    for repeat, expected in ((True, B), (False, A)):
        p = default_policy(repeat_fossilized_blueprint=repeat)
        first = p.decide(report=_flat(3), mask=mask(3, germinate=[0], blueprints=[B, C]))
        assert (first.slot, first.blueprint) == (0, B)
        for epoch in (6, 7):
            d = p.decide(report=grown(epoch), mask=lifecycle_mask(grown(epoch)))
            assert (d.op, d.blueprint) == (Op.GERMINATE, expected)
