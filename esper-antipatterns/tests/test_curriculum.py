from __future__ import annotations

import pytest

from esper_antipatterns.catalog import ANTIPATTERNS, Category
from esper_antipatterns.curriculum import blueprint_keys, curriculum, curriculum_order, members

ORDER = ["division_by_feature", "kaiming_mismatch", "sigmoid_sandwich", "gain_amplifier",
         "deep_linear_stack", "expensive_identity", "redundant_ensemble", "correlated_noise",
         "asymmetric_bottleneck", "momentum_dampener"]


def test_full_order_is_by_category_clearest_signal_first() -> None:
    assert curriculum() == curriculum(None) == curriculum(4) == ORDER
    assert [a.name for a in curriculum_order()] == ORDER
    categories = [a.category.stage for a in curriculum_order()]
    assert categories == sorted(categories)


def test_stages_are_cumulative() -> None:
    assert curriculum(1) == curriculum("1") == curriculum("catastrophic") == ORDER[:2]
    assert curriculum(2) == curriculum("gradient_killer") == curriculum("Gradient-Killer") == ORDER[:5]
    assert curriculum(3) == curriculum("deceptive") == ORDER[:7]
    assert blueprint_keys(1) == ["cnn:division_by_feature", "cnn:kaiming_mismatch"]
    assert blueprint_keys(1, topology="transformer") == ["transformer:division_by_feature",
                                                         "transformer:kaiming_mismatch"]
    with pytest.raises(ValueError, match="not 'rnn'"):
        blueprint_keys(1, topology="rnn")


def test_members_of_one_family() -> None:
    assert members("subtle") == ORDER[7:]
    assert members(Category.DECEPTIVE) == ORDER[5:7]
    by_category = {c: {a.name for a in ANTIPATTERNS if a.category is c} for c in Category}
    assert all(set(members(c)) == names for c, names in by_category.items())


@pytest.mark.parametrize("bad", [0, 5, "9", "weird", True, 2.5])
def test_bad_stages_are_clear_errors(bad) -> None:
    with pytest.raises((ValueError, TypeError), match="stage|category"):
        curriculum(bad)
