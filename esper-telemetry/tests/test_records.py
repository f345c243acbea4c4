from __future__ import annotations

import json

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
