"""``esper evaluate``'s paired comparison of test accuracy, and how it is printed."""

import pytest

from esper_core.paired import paired_difference
from esper_core.presentation.evaluation_report import format_evaluation


def test_paired_difference_mean_sd_and_t():
    d = paired_difference([70.0, 72.0, 71.0], [60.0, 61.0, 63.0])  # differences 10, 11, 8
    assert d["n"] == 3 and d["mean"] == pytest.approx(29 / 3)
    assert d["sd"] == pytest.approx(1.527525, rel=1e-5)
    assert d["t"] == pytest.approx((29 / 3) / (1.527525 / 3 ** 0.5), rel=1e-5)


@pytest.mark.parametrize(("a", "b"), [([70.0], [60.0]), ([70.0, 71.0], [60.0, 61.0]),
                                      # returns summed in another order: equal up to rounding
                                      ([2.09 + 0.1 + 0.2, 2.09 + 0.3], [2.59, 2.59])])
def test_paired_t_is_undefined_for_one_episode_or_no_spread(a, b):
    assert paired_difference(a, b)["t"] is None


def test_the_table_shows_test_accuracy_and_the_paired_lines():
    def row(name, tests):
        return {"policy": name, "test_accuracy_mean": None if tests is None else sum(tests) / len(tests),
                "test_accuracy_std": 0.5, "final_accuracy_mean": 1.0, "final_accuracy_std": 0.0,
                "params_added_mean": 0.0, "params_added_std": 0.0, "return_mean": 0.0, "return_std": 0.0,
                "fossilized": 0, "culled": 0, "per_blueprint": {}}

    evaluation = {"checkpoint": "p.pt", "task": "toy", "held_out_seeds": [1, 3], "epochs": 4,
                  "policies": [row("ppo", [70.0, 72.0]), row("noop", [60.0, 61.0]), row("other", None)],
                  "paired_test_accuracy": {"noop": paired_difference([70.0, 72.0], [60.0, 61.0])}}
    text = format_evaluation(evaluation)
    assert "test acc %" in text and "71.00 ± 0.50" in text
    assert "paired test accuracy, ppo minus each" in text and "− noop: +10.50 ± 0.71 (t 21.00, 2 episodes)" in text
    other = next(line for line in text.splitlines() if line.startswith("other"))
    assert other.split()[1] == "-"  # a task without a test split shows none, and no paired line
