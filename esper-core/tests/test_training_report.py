"""The end-of-training table: the trainer owns its columns; core knows no trainer by name."""

from esper_core.presentation.run_report import format_summary

BASE = {"training": True, "run_id": "r1", "policy": "mine", "task": "toy", "seed": 3, "wall_seconds": 2.0,
        "policy_checkpoint": "run/policy.pt"}


def test_a_trainer_without_a_report_gets_its_history_keys_as_columns():
    text = format_summary({**BASE, "history": [{"step": 10, "loss": 0.5}, {"step": 20, "loss": 0.25}]})
    header = next(line for line in text.splitlines() if "step" in line)
    assert header.split() == ["step", "loss"]
    assert "run r1: trained mine on task toy, seed 3, 2.0 s" in text and "0.25" in text


def test_a_trainer_report_and_shape_are_printed_as_given():
    text = format_summary({**BASE, "shape": "4 rounds of something", "history": [{"ignored": 1}],
                           "report": {"columns": ["round", "score"], "rows": [[1, 0.5], [2, None]]}})
    assert "seed 3: 4 rounds of something, 2.0 s" in text
    assert "ignored" not in text
    rows = [line.split() for line in text.splitlines() if line.strip().startswith(("1", "2"))]
    assert rows == [["1", "0.5"], ["2", "-"]]
