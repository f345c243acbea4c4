"""The one table format every command prints."""

from esper_core.presentation.table import format_table


def test_left_aligned_by_default_with_a_rule_under_the_header():
    assert format_table(["name", "n"], [["a", 1], ["bbb", None]]).splitlines() == [
        "name  n", "----  -", "a     1", "bbb"]


def test_auto_right_aligns_numeric_columns_and_skips_missing_cells():
    text = format_table(["run", "acc %"], [["x", "70.85"], ["long-name", "-"], ["y", "5%"]], "auto", missing="-")
    assert text.splitlines() == ["run        acc %", "---------  -----", "x          70.85",
                                 "long-name      -", "y             5%"]


def test_explicit_alignment_per_column():
    assert format_table(["a", "b"], [["1", "x"]], "rl").splitlines()[2] == "1  x"
    assert format_table(["aa", "b"], [["1", "x"]], "rl").splitlines()[2] == " 1  x"
