"""The multi-seed rule that turns per-seed detections into a catalogued signature."""

from __future__ import annotations

import pytest

from esper_antipatterns.signatures import consensus


def test_designed_signature_wins_when_two_of_three_seeds_show_it() -> None:
    runs = [{"plateau", "cost_without_benefit"}, {"plateau", "cost_without_benefit"}, set()]
    assert consensus(runs, "plateau") == "plateau"
    assert consensus(runs, "cost_without_benefit") == "cost_without_benefit"


def test_one_seed_of_three_is_not_enough() -> None:
    assert consensus([{"nan_inf"}, set(), set()], "nan_inf") is None
    assert consensus([{"nan_inf"}, {"plateau"}, {"gradient_collapse"}], "nan_inf") is None


def test_without_the_designed_one_the_most_severe_shown_signature_counts() -> None:
    runs = [{"plateau", "gradient_collapse"}, {"plateau", "gradient_collapse"}, {"plateau"}]
    assert consensus(runs, "nan_inf") == "gradient_collapse"
    # Equal penalties (collapse and explosion, -10 each): Signature order breaks the tie.
    tie = [{"gradient_explosion", "gradient_collapse"}] * 3
    assert consensus(tie, "plateau") == "gradient_collapse"


def test_a_single_seed_decides_alone_and_no_seed_is_an_error() -> None:
    assert consensus([{"plateau"}], "nan_inf") == "plateau"
    assert consensus([set()], "nan_inf") is None
    with pytest.raises(ValueError, match="at least one seed"):
        consensus([], "plateau")
