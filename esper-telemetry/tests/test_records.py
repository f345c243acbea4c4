from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from esper_telemetry.records import read_events, read_summary


def test_truncated_last_line_of_a_killed_run_is_skipped(run_dir, recorded_events):
    path = run_dir / "events.jsonl"
    text = path.read_text()
    path.write_text(text + text.splitlines()[5][:40])  # half-written line, no newline
    with capture_logs() as logs:
        events = read_events(path)
    assert events == recorded_events
    assert logs[0]["lines"] == 1


def test_summary_reading(run_dir):
    assert read_summary(run_dir)["final_accuracy"] == 54.4
    (run_dir / "summary.json").write_text("[1, 2]")
    assert read_summary(run_dir) is None
    (run_dir / "summary.json").write_text("{broken")
    assert read_summary(run_dir) is None
    (run_dir / "summary.json").unlink()
    assert read_summary(run_dir) is None
    assert json.loads((run_dir / "events.jsonl").read_text().splitlines()[0])["kind"] == (
        "run_started")


HOSTILE_LINES = [
    b"\xff\xfe not utf-8 at all\n",
    b"[1, 2, 3]\n",
    b"[" * 50_000 + b"]" * 50_000 + b"\n",
    b'{"kind": "epoch", "schema_version": 1, "epoch": "three"}\n',
    json.dumps({"kind": "epoch", "schema_version": 1, "episode": 0, "epoch": 9, "train_loss": 1.0,
                "val_loss": 1.0, "val_accuracy": "high", "host_params": 1, "seed_params": 1,
                "seconds": 1.0}).encode() + b"\n",
    json.dumps({"kind": "gate", "schema_version": 1, "slot": "a", "gate": "g", "target": "T", "passed": "yes",
                "reason": "r"}).encode() + b"\n",
]


def test_unreadable_and_wrong_typed_lines_are_skipped(run_dir, recorded_events):
    path = run_dir / "events.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3] + HOSTILE_LINES + lines[3:]))
    with capture_logs() as logs:
        events = read_events(path)
    assert events == recorded_events
    assert logs[0]["lines"] == len(HOSTILE_LINES)


def test_a_deeply_nested_or_non_utf8_summary_is_unreadable_not_fatal(run_dir):
    (run_dir / "summary.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    assert read_summary(run_dir) is None
    (run_dir / "summary.json").write_bytes(b"\xff{}")
    assert read_summary(run_dir) is None


def test_wrong_typed_summary_fields_are_left_out_of_the_runs_table(run_dir):
    from esper_telemetry.queries import load_run_dir

    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(final_accuracy="lots", epochs=[1], wall_seconds={"a": 1}, seed=True,
                   seeds=[{"slot": ["x"], "outcome": 3, "contribution": "big"}, "not a seed"])
    (run_dir / "summary.json").write_text(json.dumps(summary))
    source = load_run_dir(run_dir)
    row = source.connection.execute("SELECT final_accuracy, epochs, wall_seconds, seed FROM runs").fetchone()
    assert row[0] != "lots" and row[1] != "[1]" and row[3] is not True


@pytest.mark.parametrize(("content", "why"), [
    ("{", "it is not valid JSON: "),
    ("", "it is empty"),
    ("[]", "it holds a JSON list, not an object"),
])
def test_an_unreadable_summary_is_named_not_missing(tmp_path, content, why):
    """A run directory whose only record is a summary.json that cannot be used is not "a folder
    with none of the run's files": the error names that file and what is wrong with it."""
    from esper_core.errors import EsperError
    from esper_telemetry.queries import load_run_dir

    (tmp_path / "summary.json").write_text(content)
    with pytest.raises(EsperError) as info:
        load_run_dir(tmp_path)
    message = str(info.value)
    assert f"{str(tmp_path / 'summary.json')!r}: {why}" in message and ", and the run has no" in message
    assert "none of" not in message
    assert "\n" not in message
