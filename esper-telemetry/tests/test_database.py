"""The run database's held-out test columns, and database files made before they existed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from esper_telemetry import queries
from esper_telemetry.commands import runs
from esper_telemetry.database import SCHEMA
from esper_telemetry.sinks.sqlite import SqliteSink

#: The recorded run's held-out test accuracy and its baseline's (conftest.make_summary).
TEST_ACCURACY, BASELINE_TEST_ACCURACY = 52.1, 49.3

#: The runs and seeds tables as esper-telemetry wrote them before the test-split columns and
#: the seed gain were added (the other tables are unchanged).
_OLD_TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, task TEXT, policy TEXT, seed INTEGER,
    status TEXT NOT NULL DEFAULT 'running', started_at REAL, ended_at REAL,
    epochs INTEGER NOT NULL DEFAULT 0, final_accuracy REAL, best_accuracy REAL,
    host_params INTEGER, seed_params INTEGER, wall_seconds REAL,
    rollbacks INTEGER NOT NULL DEFAULT 0, baseline_accuracy REAL,
    truncated INTEGER NOT NULL DEFAULT 0, config_json TEXT, summary_json TEXT
);
CREATE TABLE seeds (
    seed_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, episode INTEGER NOT NULL,
    slot TEXT NOT NULL, blueprint TEXT, germinated_epoch INTEGER, ended_epoch INTEGER,
    outcome TEXT NOT NULL DEFAULT 'live', last_stage TEXT, contribution REAL
);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO runs (run_id, task, policy, seed, status, started_at, epochs, final_accuracy,
                  best_accuracy, host_params, seed_params, wall_seconds, baseline_accuracy)
    VALUES ('run-old', 'procedural', 'heuristic', 3, 'finished', 1600000000.0, 5, 47.25, 48.0,
            1000, 50, 9.0, 45.5);
INSERT INTO seeds (run_id, episode, slot, blueprint, germinated_epoch, ended_epoch, outcome,
                   contribution)
    VALUES ('run-old', 0, 'r0', 'cnn:conv_light', 2, 5, 'fossilized', 1.25);
"""


def _old_database(path: Path) -> Path:
    connection = sqlite3.connect(path)
    connection.executescript(_OLD_TABLES)
    # The unchanged tables; IF NOT EXISTS leaves the old runs and seeds tables as they are.
    connection.executescript(SCHEMA)
    connection.commit()
    connection.close()
    return path


def _columns(path: Path, table: str) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        return {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
    finally:
        connection.close()


def _row(output: str, first_cell: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(first_cell))


def test_summary_test_accuracies_and_seed_gains_are_stored(tmp_path, recorded_events):
    sink = SqliteSink(tmp_path / "run.sqlite")
    for event in recorded_events:
        sink.emit(event)
    sink.close()
    connection = sqlite3.connect(tmp_path / "run.sqlite")
    run = connection.execute(
        "SELECT test_accuracy, baseline_test_accuracy, final_accuracy, baseline_accuracy "
        "FROM runs").fetchall()
    seeds = connection.execute(
        "SELECT slot, seed_gain, contribution FROM seeds ORDER BY seed_id").fetchall()
    connection.close()
    assert run == [(TEST_ACCURACY, BASELINE_TEST_ACCURACY, 54.4, 50.0)]
    assert seeds == [("r0", 0.7, 2.6), ("r1", -0.2, None)]


def test_seed_gain_comes_from_training_epochs_without_a_summary(tmp_path, recorded_events):
    sink = SqliteSink(tmp_path / "run.sqlite")
    for event in recorded_events[:-1]:  # every event but RunEnded: a run still training
        sink.emit(event)
    sink.close()
    record, _, sources = queries.resolve_run("run-a", tmp_path / "run.sqlite")
    queries.close_sources(sources)
    # The last gain measured while each seed was TRAINING; no test figure before the run ends.
    assert [(s.slot, s.seed_gain) for s in record.seeds] == [("r0", 0.7), ("r1", -0.2)]
    assert record.test_accuracy is None and record.test_gain is None


def test_wrong_typed_test_accuracies_are_left_out(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["test_accuracy"] = "high"
    summary["baseline"]["test_accuracy"] = True
    summary["seeds"][0]["seed_gain"] = "some"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "events.jsonl").unlink()
    source = queries.load_run_dir(run_dir)
    row = source.connection.execute(
        "SELECT test_accuracy, baseline_test_accuracy, baseline_accuracy FROM runs").fetchone()
    gains = source.connection.execute("SELECT seed_gain FROM seeds ORDER BY seed_id").fetchall()
    source.connection.close()
    assert row == (None, None, 50.0)
    assert gains == [(None,), (-0.2,)]


def test_an_old_database_file_is_read_without_the_new_columns(tmp_path):
    old = _old_database(tmp_path / "runs.sqlite")
    listed = CliRunner().invoke(runs, ["list", "--db", str(old)])
    assert listed.exit_code == 0, listed.output
    assert _row(listed.output, "run-old")[6:11] == ["-", "-", "-", "47.25", "48.00"]
    shown = CliRunner().invoke(runs, ["show", "run-old", "--db", str(old)])
    assert shown.exit_code == 0, shown.output
    assert _row(shown.output, "test accuracy")[-1] == "-"
    assert _row(shown.output, "val final accuracy")[-1] == "47.25"
    assert _row(shown.output, "baseline val accuracy")[-1] == "45.50"
    assert _row(shown.output, "      0  r0")[-2:] == ["-", "+1.25"]
    # Queries open files read-only: the old file is read as it is, never altered.
    assert "test_accuracy" not in _columns(old, "runs")


def test_a_sink_adds_the_missing_columns_to_an_old_database_file(tmp_path, run_factory):
    old = _old_database(tmp_path / "runs.sqlite")
    sink = SqliteSink(old)
    for event in run_factory("run-new"):
        sink.emit(event)
    sink.close()
    assert {"test_accuracy", "baseline_test_accuracy"} <= _columns(old, "runs")
    assert "seed_gain" in _columns(old, "seeds")
    SqliteSink(old).close()  # opening again finds the columns there and adds nothing
    sources = queries.open_sources(old)
    try:
        records = {r.run_id: r for r in queries.list_runs(sources)}
    finally:
        queries.close_sources(sources)
    assert records["run-old"].final_accuracy == 47.25
    assert records["run-old"].test_accuracy is None
    assert records["run-old"].seeds[0].contribution == 1.25
    assert records["run-new"].test_accuracy == TEST_ACCURACY
    assert records["run-new"].baseline_test_accuracy == BASELINE_TEST_ACCURACY
    assert [s.seed_gain for s in records["run-new"].seeds] == [0.7, -0.2]
