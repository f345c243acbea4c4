from __future__ import annotations

import math

import attrs
import pytest

from esper_antipatterns.detectors import DetectorConfig, FailureDetector, SeedObservation, growth_per_point
from esper_core.contracts.events import Anomaly
from esper_core.contracts.reports import EpochReport, SlotReport
from esper_core.contracts.stages import SeedStage


def obs(epoch: int = 1, **fields) -> SeedObservation:
    base = {"slot": "s0", "blueprint": "conv_light", "epoch": epoch, "val_accuracy": 50.0 + epoch,
            "grad_norm": 0.1, "seed_params": 100, "host_params": 10_000}
    return SeedObservation(**{**base, **fields})


def run(observations) -> list[list[str]]:
    detector = FailureDetector()
    return [[a.signature for a in detector.observe(o)] for o in observations]


def test_healthy_seed_raises_nothing() -> None:
    # improving accuracy, sane gradients, contribution worth its cost
    seq = [obs(e, contribution=2.0 if e > 3 else None) for e in range(1, 15)]
    assert run(seq) == [[]] * 14


@pytest.mark.parametrize(("fields", "expected"), [
    ({"finite": False}, ["nan_inf"]),
    ({"grad_norm": math.nan}, ["nan_inf"]),
    ({"grad_norm": math.inf}, ["nan_inf"]),
    ({"grad_norm": 1e-9}, ["gradient_collapse"]),
    ({"grad_norm": 0.0}, ["gradient_collapse"]),
    ({"grad_norm": 2e4}, ["gradient_explosion"]),
    ({"grad_norm": 1e-7}, []),
    ({"grad_norm": 1e4}, []),
    ({"grad_norm": None}, []),
    ({"grad_norm": 0.0, "seed_params": 0}, []),  # a parameter-free seed has no gradient to lose
])
def test_per_occurrence_signatures(fields, expected) -> None:
    assert run([obs(**fields)]) == [expected]


def test_anomalies_name_the_seed_and_signature() -> None:
    detector = FailureDetector(run_id="r1")
    [anomaly] = detector.observe(obs(3, slot="block2", grad_norm=5e5, episode=4))
    assert isinstance(anomaly, Anomaly)
    assert (anomaly.slot, anomaly.signature, anomaly.epoch, anomaly.episode, anomaly.run_id) == (
        "block2", "gradient_explosion", 3, 4, "r1")
    assert anomaly.detail.startswith("conv_light:") and anomaly.value == 5e5
    assert anomaly.to_record()["kind"] == "anomaly"


def test_plateau_fires_every_stagnant_epoch_and_not_before_the_window() -> None:
    accs = [50, 55, 60, 60.1, 60.2, 60.0, 60.3, 60.2, 60.1, 61.0]
    result = run([obs(e + 1, val_accuracy=a) for e, a in enumerate(accs)])
    assert result[:7] == [[]] * 7  # window 5 needs 6 epochs; epochs 6-7 still beat 1-2 by ≥ 0.5
    # epochs 8-9 stagnate; at epoch 10 the 61.0 beats the best before the window by 0.8
    assert result[7:] == [["plateau"], ["plateau"], []]


def test_plateau_needs_a_finite_history() -> None:
    seq = [obs(e, val_accuracy=math.nan if e == 2 else 50.0) for e in range(1, 8)]
    assert ["plateau"] not in run(seq)[:7]


def test_cost_without_benefit_fires_once_per_seed() -> None:
    # 30 % growth for 0.5 points = 60 %/point > 10, judged after 5 measured epochs
    seq = [obs(e, contribution=0.5, seed_params=3000) for e in range(1, 9)]
    assert [("cost_without_benefit" in r) for r in run(seq)] == [False] * 4 + [True] + [False] * 3


def test_cost_of_a_training_seed_is_judged_on_its_seed_gain() -> None:
    # never in the forward yet: its benefit is what switching it on would add
    seq = [obs(e, seed_gain=-20.0, seed_params=3000) for e in range(1, 6)]
    result = run(seq)
    assert [("cost_without_benefit" in r) for r in result] == [False] * 4 + [True]
    detector = FailureDetector()
    for o in seq[:4]:
        detector.observe(o)
    [anomaly] = [a for a in detector.observe(seq[4]) if a.signature == "cost_without_benefit"]
    assert anomaly.value == math.inf and "best benefit -20.00 over 5 epochs" in anomaly.detail


def test_a_seed_that_shows_a_benefit_once_is_not_called_costly() -> None:
    # conv_light's pattern: negative seed gain at first, then a real contribution
    gains = [-19.0, -8.0, 4.0, None, None, None]
    seq = [obs(e, seed_params=300, seed_gain=g, contribution=None if g is not None else 1.0)
           for e, g in enumerate(gains, start=1)]
    assert all("cost_without_benefit" not in r for r in run(seq))


def test_a_seed_is_not_called_costly_while_it_blends_in() -> None:
    # 30 % growth. While α ramps, the contribution (α against 0) is a part of the seed's: after
    # 5 measured epochs its best is 1.5 points (20 %/point), yet at α = 1 it adds 9 points and
    # fossilizes. Judged once fully blended, it is worth its cost.
    stages = ["TRAINING", "TRAINING", "BLENDING", "BLENDING", "BLENDING", "BLENDING", "SHADOWING",
              "PROBATIONARY"]
    contributions = [None, None, 0.5, 1.0, 1.5, 4.0, 9.0, 9.05]
    seq = [obs(e, stage=stage, seed_gain=1.0 if stage == "TRAINING" else None, contribution=c,
               seed_params=3000)
           for e, (stage, c) in enumerate(zip(stages, contributions, strict=True), start=1)]
    assert all("cost_without_benefit" not in r for r in run(seq))
    # The same seed still adding 1.5 points at α = 1 is flagged then, once.
    weak = [attrs.evolve(o, contribution=min(o.contribution, 1.5)) if o.contribution else o for o in seq]
    assert [("cost_without_benefit" in r) for r in run(weak)] == [False] * 6 + [True, False]


def test_benefit_and_accuracy_with_the_seed() -> None:
    training = obs(seed_gain=-30.0, val_accuracy=60.0)
    assert training.benefit == -30.0 and training.accuracy_with_seed == 30.0
    blended = obs(seed_gain=-30.0, contribution=2.0, val_accuracy=60.0)
    assert blended.benefit == 2.0 and blended.accuracy_with_seed == 60.0
    assert obs().benefit is None


def test_first_plateau_window_is_measured_from_the_planted_accuracy() -> None:
    # a TRAINING seed that would cost 40 points if switched on: no improvement over 60 at planting
    seq = [obs(e, val_accuracy=60.0 + 0.3 * e, seed_gain=-40.0, accuracy_at_germination=60.0)
           for e in range(1, 6)]
    assert [("plateau" in r) for r in run(seq)] == [False] * 4 + [True]
    # the same host curve with a seed that helps is not a plateau
    good = [attrs.evolve(o, seed_gain=1.0) for o in seq]
    assert all("plateau" not in r for r in run(good))


def test_cost_uses_flops_when_given() -> None:
    cheap = obs(contribution=1.0, seed_params=100, seed_flops=50_000, host_flops=100_000)
    assert growth_per_point(cheap) == pytest.approx(50.0)
    assert growth_per_point(obs(contribution=-1.0)) == math.inf
    assert growth_per_point(obs(contribution=None)) is None
    assert growth_per_point(obs(contribution=1.0, seed_params=0)) is None


def test_history_restarts_for_a_new_seed_in_the_same_slot() -> None:
    detector = FailureDetector()
    for e in range(1, 7):
        detector.observe(obs(e, val_accuracy=50.0, germinated_epoch=0))
    # a new seed: its first epoch cannot be a plateau yet
    assert detector.observe(obs(7, val_accuracy=50.0, germinated_epoch=7)) == []
    detector.forget("s0")
    detector.reset()


def _report(epoch: int, stage: SeedStage, grad_norm_slot: str = "a") -> EpochReport:
    slots = (SlotReport(slot="a", index=0, width=8, stage=stage, blueprint="cnn:gain_amplifier",
                        seed_params=9, germinated_epoch=1, contribution=None),
             SlotReport(slot="b", index=1, width=8, stage=SeedStage.DORMANT))
    return EpochReport(episode=0, epoch=epoch, max_epochs=10, train_loss=1.0, val_loss=1.0,
                       val_accuracy=40.0, host_params=1000, seed_params=9, slots=slots)


def _explosive() -> FailureDetector:
    """A detector for which the reports' blueprint is catalogued with gradient explosion."""
    return FailureDetector(expected={"cnn:gain_amplifier": "gradient_explosion"})


def test_observe_report_covers_live_seeds_only() -> None:
    detector = _explosive()
    found = detector.observe_report(_report(2, SeedStage.TRAINING), grad_norms={"a": 1e6, "b": 1e9})
    assert [(a.slot, a.signature) for a in found] == [("a", "gradient_explosion")]
    found = detector.observe_report(_report(3, SeedStage.TRAINING), grad_norms={}, finite={"a": False})
    assert [(a.slot, a.signature) for a in found] == [("a", "nan_inf")]
    assert detector.observe_report(_report(4, SeedStage.CULLED), grad_norms={"a": 1e9}) == []


def test_anomalies_of_an_antipattern_seed_say_whether_they_are_its_catalogued_signature() -> None:
    detector = _explosive()
    (explosion,) = detector.observe_report(_report(2, SeedStage.TRAINING), grad_norms={"a": 1e6})
    assert (explosion.expected, explosion.matches) == ("gradient_explosion", True)
    (non_finite,) = detector.observe_report(_report(3, SeedStage.TRAINING), grad_norms={}, finite={"a": False})
    assert (non_finite.expected, non_finite.matches) == ("gradient_explosion", False)
    # any other blueprint is not compared with anything
    (other,) = detector.observe(obs(1, finite=False))
    assert (other.expected, other.matches) == (None, None)


def test_a_culled_antipattern_seed_without_its_signature_is_a_mismatch() -> None:
    detector = _explosive()
    assert detector.observe_report(_report(2, SeedStage.TRAINING), grad_norms={}, finite={"a": False})
    (mismatch,) = detector.observe_report(_report(3, SeedStage.CULLED), grad_norms={})
    assert (mismatch.slot, mismatch.epoch, mismatch.signature) == ("a", 3, "signature_mismatch")
    assert (mismatch.expected, mismatch.matches) == ("gradient_explosion", False)
    assert mismatch.detail == "cnn:gain_amplifier: expected gradient_explosion, detected nan_inf"
    # checked once: the slot's history is gone
    assert detector.observe_report(_report(4, SeedStage.CULLED), grad_norms={}) == []


def test_a_seed_alive_at_the_episode_end_is_checked_on_the_last_epoch() -> None:
    detector = _explosive()
    assert detector.observe_report(_report(9, SeedStage.TRAINING), grad_norms={}) == []
    (mismatch,) = detector.observe_report(_report(10, SeedStage.TRAINING), grad_norms={})
    assert mismatch.detail == "cnn:gain_amplifier: expected gradient_explosion, detected nothing"


def test_a_seed_that_showed_its_signature_ends_without_a_mismatch() -> None:
    detector = _explosive()
    detector.observe_report(_report(2, SeedStage.TRAINING), grad_norms={"a": 1e6})
    assert detector.observe_report(_report(3, SeedStage.TRAINING), grad_norms={}) == []
    assert detector.observe_report(_report(4, SeedStage.FOSSILIZED), grad_norms={}) == []
    # a blueprint that is not an anti-pattern is never a mismatch
    detector.observe(obs(1, slot="b"))
    assert detector.forget("b", epoch=2) == []


def test_a_seed_culled_by_a_governor_rollback_showed_non_finite_values() -> None:
    detector = _explosive()
    detector.observe_report(_report(2, SeedStage.TRAINING), grad_norms={"a": 1.0})
    culled = attrs.evolve(_report(3, SeedStage.CULLED), rollbacks=1)
    found = detector.observe_report(culled, grad_norms={})
    assert [(a.slot, a.signature, a.matches) for a in found] == [
        ("a", "nan_inf", False), ("a", "signature_mismatch", False)]
    assert found[1].detail == "cnn:gain_amplifier: expected gradient_explosion, detected nan_inf"
    # a cull without a rollback in the epoch is the policy's: no signature of its own
    detector.observe_report(_report(4, SeedStage.TRAINING), grad_norms={"a": 1e6})
    assert detector.observe_report(_report(5, SeedStage.CULLED), grad_norms={}) == []


def test_a_seed_rolled_back_before_it_was_ever_observed_live_still_shows_non_finite_values() -> None:
    """Germinated by the decision closing epoch 1, culled by the governor during epoch 2: the
    observer's first look at it is the CULLED slot of epoch 2's report (measured:
    division_by_feature on shapes, seeds 1 and 2)."""
    detector = FailureDetector(expected={"cnn:gain_amplifier": "nan_inf"})
    detector.observe_report(_report(1, SeedStage.DORMANT), grad_norms={})
    culled = attrs.evolve(_report(2, SeedStage.CULLED), rollbacks=1)
    culled = attrs.evolve(culled, slots=(attrs.evolve(culled.slots[0], germinated_epoch=1), culled.slots[1]))
    found = detector.observe_report(culled, grad_norms={})
    assert [(a.slot, a.signature, a.expected, a.matches) for a in found] == [("a", "nan_inf", "nan_inf", True)]
    # Seen once: the same culled seed in the next report, or a stale cull, is not blamed again.
    assert detector.observe_report(attrs.evolve(culled, epoch=3), grad_norms={}) == []
    stale = attrs.evolve(culled, epoch=5)
    assert detector.observe_report(stale, grad_norms={}) == []
    # Without a rollback in the epoch a cull is the policy's, not a non-finite value.
    fresh = FailureDetector(expected={"cnn:gain_amplifier": "nan_inf"})
    assert fresh.observe_report(attrs.evolve(culled, rollbacks=0), grad_norms={}) == []


def test_an_entry_that_expects_no_signature_is_a_mismatch_only_when_one_appears() -> None:
    detector = FailureDetector(expected={"cnn:quiet": "none"})
    assert detector.observe(obs(1, blueprint="cnn:quiet")) == []
    assert detector.forget("s0", epoch=1) == []
    (loud,) = detector.observe(obs(1, blueprint="cnn:quiet", finite=False))
    assert (loud.expected, loud.matches) == ("none", False)
    (mismatch,) = detector.forget("s0", epoch=2)
    assert mismatch.detail == "cnn:quiet: expected none, detected nan_inf"


def test_the_default_expectations_are_the_catalog_entries() -> None:
    expected = FailureDetector().expected
    assert expected["cnn:deep_linear_stack"] == "none"
    assert expected["cnn:gain_amplifier"] == "none"
    assert expected["cnn:division_by_feature"] == "nan_inf"
    assert expected["transformer:deep_linear_stack"] == "cost_without_benefit"
    assert expected["transformer:division_by_feature"] == "plateau"
    assert len(expected) == 20


def test_from_reports_needs_a_seed() -> None:
    report = _report(2, SeedStage.TRAINING)
    with pytest.raises(ValueError, match="holds no seed"):
        SeedObservation.from_reports(report, report.slots[1], grad_norm=None)
    built = SeedObservation.from_reports(report, report.slots[0], grad_norm=0.5)
    assert (built.blueprint, built.host_params, built.stage) == ("cnn:gain_amplifier", 1000, "TRAINING")


@pytest.mark.parametrize("bad", [
    {"grad_norm": -1.0}, {"grad_norm": "big"}, {"epoch": 0}, {"seed_params": -1}, {"slot": ""},
    {"finite": 1}, {"contribution": True},
])
def test_observation_validation(bad) -> None:
    with pytest.raises((TypeError, ValueError)):
        obs(**bad)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="collapse_below"):
        DetectorConfig(collapse_below=1.0, explode_above=0.5)
    with pytest.raises(ValueError):
        DetectorConfig(plateau_window=0)
    strict = FailureDetector(DetectorConfig(explode_above=10.0))
    assert [a.signature for a in strict.observe(obs(grad_norm=11.0))] == ["gradient_explosion"]
    assert attrs.evolve(DetectorConfig(), plateau_window=3).plateau_window == 3
