import pytest
from policy_testkit import S, dormant, report, slot

from esper_policies.tracker import SignalTracker, TrackerConfig


def feed(tracker, accuracies, **kw):
    return [tracker.update(report(i + 1, a, **kw)) for i, a in enumerate(accuracies)]


def test_first_epoch_has_zero_deltas_and_no_plateau():
    sig = SignalTracker().update(report(1, 40.0, loss=1.5))
    assert (sig.accuracy_delta, sig.loss_delta) == (0, 0)
    assert (sig.smoothed_delta, sig.plateau_epochs) == (0, 0)
    assert sig.best_accuracy == 40.0
    assert sig.epochs_since_cull == 1


def test_deltas_against_previous_epoch_and_best_accuracy():
    tracker = SignalTracker()
    tracker.update(report(1, 40.0, loss=1.5))
    tracker.update(report(2, 46.0, loss=1.2))
    sig = tracker.update(report(3, 44.5, loss=1.3))
    assert sig.accuracy_delta == pytest.approx(-1.5)
    assert sig.loss_delta == pytest.approx(0.1)
    assert sig.best_accuracy == 46.0
    assert sig.accuracy_history == (40.0, 46.0, 44.5)
    assert sig.loss_history == (1.5, 1.2, 1.3)


def test_smoothed_delta_is_an_ema_seeded_with_the_first_delta():
    sigs = feed(SignalTracker(smoothing=0.5), [0.0, 10.0, 10.0, 10.0, 14.0])
    assert [s.smoothed_delta for s in sigs] == pytest.approx([0.0, 10.0, 5.0, 2.5, 3.25])


def test_plateau_counts_smoothed_not_raw_improvement():
    # Raw deltas alternate 2.0 / 0.2: every other raw delta is below 0.5, but the smoothed
    # trend never is, so a noisy but improving run is not a plateau.
    accs = [0.0]
    for i in range(10):
        accs.append(accs[-1] + (2.0 if i % 2 == 0 else 0.2))
    sigs = feed(SignalTracker(), accs)
    assert min(s.smoothed_delta for s in sigs[1:]) > 0.5
    assert all(s.plateau_epochs == 0 for s in sigs)
    raw = feed(SignalTracker(smoothing=1.0), accs)
    assert max(s.plateau_epochs for s in raw) == 1


def test_plateau_grows_while_flat_and_resets_when_improvement_returns():
    sigs = feed(SignalTracker(), [50.0, 50.0, 50.2, 50.1, 50.1, 53.0, 53.0])
    assert [s.plateau_epochs for s in sigs] == [0, 1, 2, 3, 4, 0, 0]
    # 53 → 53: smoothed = 0.5·0 + 0.5·1.45 = 0.725 ≥ 0.5 — still recovering, no plateau yet.
    assert sigs[-1].smoothed_delta == pytest.approx(0.725)


def test_plateau_threshold_is_configurable():
    sigs = feed(SignalTracker(plateau_threshold=2.0), [50, 51, 52, 53])
    assert [s.plateau_epochs for s in sigs] == [0, 1, 2, 3]


def test_histories_are_bounded_by_the_window():
    tracker = SignalTracker(history_window=3)
    sigs = feed(tracker, [float(a) for a in range(10)])
    assert sigs[-1].accuracy_history == (7.0, 8.0, 9.0)
    assert len(sigs[-1].loss_history) == 3
    assert sigs[-1].best_accuracy == 9.0  # best is over the episode, not the window


def test_same_report_twice_is_not_counted_twice():
    tracker = SignalTracker()
    feed(tracker, [50.0, 50.0])
    rep = report(3, 50.0)
    first = tracker.update(rep)
    assert tracker.update(rep) is first
    assert first.plateau_epochs == 2


def test_conflicting_or_backwards_epochs_are_errors():
    tracker = SignalTracker()
    feed(tracker, [50.0, 51.0])
    with pytest.raises(ValueError, match="already recorded"):
        tracker.update(report(2, 99.0))
    with pytest.raises(ValueError, match="backwards"):
        tracker.update(report(1, 50.0))


def test_new_episode_starts_fresh_and_reset_forgets():
    tracker = SignalTracker()
    feed(tracker, [50.0, 50.0, 50.0])
    sig = tracker.update(report(1, 10.0, episode=1))
    assert sig.best_accuracy == 10.0 and sig.accuracy_history == (10.0,) and sig.plateau_epochs == 0
    tracker.reset()
    assert tracker.signals is None and tracker.slots == () and tracker.last_cull_epoch is None


def test_config_is_validated():
    with pytest.raises(ValueError, match="history_window"):
        TrackerConfig(history_window=0)
    with pytest.raises(ValueError, match="smoothing"):
        TrackerConfig(smoothing=0.0)


# -- culls -------------------------------------------------------------------------------


@pytest.mark.parametrize("after", [S.CULLED, S.EMBARGOED, S.RESETTING, S.DORMANT])
def test_cull_detected_from_live_to_cull_stages(after):
    tracker = SignalTracker()
    tracker.update(report(1, 50.0, slots=[slot(0, S.TRAINING, blueprint="cnn:norm")]))
    blueprint = "cnn:norm" if after in (S.CULLED, S.EMBARGOED) else None
    tracker.update(report(2, 50.0, slots=[slot(0, after, blueprint=blueprint)]))
    (cull,) = tracker.new_culls
    assert (cull.slot, cull.slot_name, cull.blueprint, cull.epoch, cull.from_stage) == (
        0, "layer1", "cnn:norm", 2, S.TRAINING)
    assert tracker.last_cull_epoch == 2 and tracker.cull_count == 1


def test_cull_is_counted_once_and_epochs_since_cull_grows():
    tracker = SignalTracker()
    stages = [S.BLENDING, S.CULLED, S.EMBARGOED, S.EMBARGOED, S.RESETTING, S.DORMANT]
    sigs = [tracker.update(report(e, 50.0, slots=[slot(0, st)])) for e, st in enumerate(stages, 4)]
    assert [s.epochs_since_cull for s in sigs] == [4, 0, 1, 2, 3, 4]
    assert tracker.cull_count == 1 and tracker.new_culls == ()


def test_fossilized_seed_is_not_a_cull():
    tracker = SignalTracker()
    tracker.update(report(1, 50.0, slots=[slot(0, S.PROBATIONARY)]))
    tracker.update(report(2, 50.0, slots=[slot(0, S.FOSSILIZED)]))
    assert tracker.new_culls == () and tracker.last_cull_epoch is None


def test_culls_in_two_slots_in_one_epoch():
    tracker = SignalTracker()
    norm = "cnn:norm"
    tracker.update(report(1, 50, slots=[slot(0, S.TRAINING), slot(1, S.BLENDING, blueprint=norm)]))
    tracker.update(report(2, 50.0, slots=[slot(0, S.CULLED), slot(1, S.CULLED, blueprint=norm)]))
    culls = [(c.slot, c.blueprint) for c in tracker.new_culls]
    assert culls == [(0, "cnn:conv_light"), (1, norm)]
    assert tracker.cull_count == 2 and tracker.last_cull_epoch == 2


# -- per-slot signals ----------------------------------------------------------------------


def test_signals_for_a_seed_in_slot_two_while_slot_one_is_empty():
    tracker = SignalTracker()
    tracker.update(report(1, 60.0, slots=dormant(3)))
    slots = [slot(0), slot(1, S.TRAINING, seed_gain=0.8), slot(2)]
    tracker.update(report(2, 61.0, slots=slots))
    first, second, third = tracker.slots
    assert not first.live and first.improvement is None and first.epochs_without_improvement == 0
    assert second.live and second.improvement_source == "seed_gain" and second.improvement == 0.8
    assert second.accuracy_at_germination == 60.0  # the accuracy before it appeared
    assert second.accuracy_change_since_germination == pytest.approx(1.0)
    assert tracker.slot(1) is second and not third.live
    with pytest.raises(KeyError):
        tracker.slot(7)


def test_improvement_measure_switches_to_contribution_from_blending():
    tracker = SignalTracker()
    tracker.update(report(1, 60.0, slots=[slot(0, S.TRAINING, seed_gain=2.0, contribution=None)]))
    assert tracker.slot(0).improvement == 2.0
    tracker.update(report(2, 60.0, slots=[slot(0, S.BLENDING, seed_gain=2.0, contribution=-0.3)]))
    s = tracker.slot(0)
    assert (s.improvement_source, s.improvement) == ("contribution", -0.3)
    assert s.best_improvement_in_stage == -0.3 and s.improvement_history == (-0.3,)
    assert s.epochs_without_improvement == 1


def test_epochs_without_improvement_is_consecutive_within_a_stage():
    tracker = SignalTracker()
    gains = [-0.1, None, 0.0, 0.4, -0.2, -0.2]
    counts = []
    for e, g in enumerate(gains, 1):
        tracker.update(report(e, 60.0, slots=[slot(0, S.TRAINING, seed_gain=g)]))
        counts.append(tracker.slot(0).epochs_without_improvement)
    assert counts == [1, 2, 3, 0, 1, 2]
    assert tracker.slot(0).best_improvement_in_stage == 0.4
    tracker.update(report(7, 60.0, slots=[slot(0, S.BLENDING, contribution=None)]))
    assert tracker.slot(0).epochs_without_improvement == 1  # new stage, fresh count


def test_engine_measured_accuracy_at_germination_wins():
    tracker = SignalTracker()
    tracker.update(report(1, 60.0))
    tracker.update(report(2, 58.0, slots=[slot(0, S.TRAINING, acc_at_germ=61.5)]))
    assert tracker.slot(0).accuracy_at_germination == 61.5
    assert tracker.slot(0).accuracy_change_since_germination == pytest.approx(-3.5)


def test_per_slot_history_is_bounded():
    tracker = SignalTracker(history_window=2)
    for e in range(1, 6):
        tracker.update(report(e, 60.0, slots=[slot(0, S.BLENDING, contribution=float(e))]))
    assert tracker.slot(0).improvement_history == (4.0, 5.0)


def test_replacement_seed_gets_a_fresh_germination_accuracy():
    tracker = SignalTracker()
    tracker.update(report(1, 60.0, slots=[slot(0, S.TRAINING, blueprint="cnn:norm")]))
    tracker.update(report(2, 70.0, slots=[slot(0, S.DORMANT)]))
    assert tracker.slot(0).accuracy_at_germination is None
    tracker.update(report(3, 72.0, slots=[slot(0, S.GERMINATED, blueprint="cnn:attention")]))
    assert tracker.slot(0).accuracy_at_germination == 70.0
