from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from esper_core.contracts.events import (
    DecisionMade,
    EpochEnded,
    RewardComputed,
    event_from_record,
)
from esper_core.errors import ConfigError, EsperError
from esper_telemetry.database import RunDatabase
from esper_telemetry.sinks.sqlite import SqliteSink


def _read(path: Path, query: str, *params: object) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(query, params).fetchall()
    finally:
        connection.close()


def test_round_trip_of_a_recorded_run(tmp_path, recorded_events):
    sink = SqliteSink.from_options(run_dir=tmp_path, options={})
    for event in recorded_events:
        sink.emit(event)
    sink.close()
    db = tmp_path / "run.sqlite"

    query = "SELECT record_json FROM events ORDER BY event_id"
    records = [json.loads(r[0]) for r in _read(db, query)]
    assert [event_from_record(r) for r in records] == recorded_events

    epochs = [e for e in recorded_events if isinstance(e, EpochEnded)]
    rows = _read(db, "SELECT epoch, train_loss, val_loss, val_accuracy, host_params, seed_params "
                     "FROM epochs WHERE run_id = 'run-a' ORDER BY epoch")
    assert rows == [(e.epoch, e.train_loss, e.val_loss, e.val_accuracy, e.host_params,
                     e.seed_params) for e in epochs]

    run = _read(db, "SELECT task, policy, seed, status, epochs, final_accuracy, best_accuracy, "
                    "rollbacks, baseline_accuracy, wall_seconds FROM runs")
    assert run == [("procedural", "heuristic", 7, "finished", 10, 54.4, 54.4, 1, 50.0, 15.5)]

    seeds = _read(db, "SELECT slot, blueprint, germinated_epoch, ended_epoch, outcome, "
                      "last_stage, contribution FROM seeds ORDER BY seed_id")
    assert seeds == [("r0", "cnn:conv_light", 3, 10, "fossilized", "FOSSILIZED", 2.6),
                     ("r1", "cnn:attention", 4, 6, "culled", "CULLED", None)]

    decisions = [e for e in recorded_events if isinstance(e, DecisionMade)]
    assert _read(db, "SELECT epoch, op, slot, blueprint FROM decisions ORDER BY decision_id") == [
        (d.epoch, d.op, d.slot, d.blueprint) for d in decisions]
    rewards = [e for e in recorded_events if isinstance(e, RewardComputed)]
    stored = _read(db, "SELECT epoch, total, terms_json FROM rewards ORDER BY reward_id")
    assert [(r[0], r[1], json.loads(r[2])) for r in stored] == [
        (r.epoch, r.total, dict(r.terms)) for r in rewards]
    alpha = _read(db, "SELECT epoch, alpha FROM slot_epochs WHERE slot = 'r0' AND epoch >= 6 "
                      "ORDER BY epoch")
    assert alpha == [(6, 0.27), (7, 0.73), (8, 0.96), (9, 1.0), (10, 1.0)]


def test_killed_mid_epoch_keeps_every_committed_epoch(tmp_path, recorded_events):
    sink = SqliteSink(tmp_path / "run.sqlite")
    # Stop right after the rollback of epoch 6 (mid-epoch): no close(), no flush().
    cut = next(i for i, e in enumerate(recorded_events) if e.kind == "governor_rollback")
    for event in recorded_events[:cut + 1]:
        sink.emit(event)
    committed = _read(tmp_path / "run.sqlite", "SELECT MAX(epoch), COUNT(*) FROM epochs")
    assert committed == [(6, 6)]
    kinds = {r[0] for r in _read(tmp_path / "run.sqlite", "SELECT DISTINCT kind FROM events")}
    assert "governor_rollback" not in kinds  # after the last commit: lost with the process
    assert _read(tmp_path / "run.sqlite", "SELECT status FROM runs") == [("running",)]
    sink.close()


def test_several_runs_share_one_database(tmp_path, run_factory):
    shared = tmp_path / "shared" / "runs.sqlite"
    for run_id in ("run-a", "run-b"):
        sink = SqliteSink.from_options(run_dir=tmp_path / run_id, options={"path": str(shared)})
        for event in run_factory(run_id):
            sink.emit(event)
        sink.close()
    assert _read(shared, "SELECT run_id, COUNT(*) FROM epochs GROUP BY run_id") == [
        ("run-a", 10), ("run-b", 10)]
    assert not (tmp_path / "run-a" / "run.sqlite").exists()


def test_row_cap_stops_recording_but_keeps_the_final_summary(tmp_path, recorded_events):
    sink = SqliteSink.from_options(run_dir=tmp_path, options={"max_rows": 20})
    with capture_logs() as logs:
        for event in recorded_events:
            sink.emit(event)
        sink.close()
    db = tmp_path / "run.sqlite"
    assert _read(db, "SELECT COUNT(*) FROM events") == [(20,)]
    assert _read(db, "SELECT status, truncated, final_accuracy FROM runs") == [
        ("finished", 1, 54.4)]
    caps = [log for log in logs if "cap" in log["event"]]
    assert len(caps) == 1 and caps[0]["max_rows"] == 20


def test_flush_commits_pending_events(tmp_path, recorded_events):
    sink = SqliteSink(tmp_path / "run.sqlite")
    sink.emit(recorded_events[0])  # RunStarted alone is not committed ...
    assert _read(tmp_path / "run.sqlite", "SELECT COUNT(*) FROM events") == [(0,)]
    sink.flush()  # ... until a flush
    assert _read(tmp_path / "run.sqlite", "SELECT COUNT(*) FROM events") == [(1,)]
    sink.close()
    sink.close()
    with pytest.raises(RuntimeError):
        sink.emit(recorded_events[1])


def test_failed_transaction_rolls_back(tmp_path, recorded_events, monkeypatch):
    sink = SqliteSink(tmp_path / "run.sqlite")

    def broken(self, event, *, record_event=True):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(RunDatabase, "apply", broken)
    sink.emit(recorded_events[0])
    with pytest.raises(sqlite3.OperationalError):
        sink.flush()
    monkeypatch.undo()
    sink.emit(recorded_events[1])
    sink.close()
    assert _read(tmp_path / "run.sqlite", "SELECT COUNT(*) FROM events") == [(1,)]


def test_options_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="'pth'.*allowed options: max_rows, path"):
        SqliteSink.from_options(run_dir=tmp_path, options={"pth": "x"})
    with pytest.raises(ConfigError, match="max_rows"):
        SqliteSink.from_options(run_dir=tmp_path, options={"max_rows": 0})
    with pytest.raises(ConfigError, match="run directory"):
        SqliteSink.from_options(run_dir=None, options={})


def test_other_schema_version_is_refused(tmp_path):
    path = tmp_path / "old.sqlite"
    SqliteSink(path).close()
    connection = sqlite3.connect(path)
    connection.execute("UPDATE meta SET value = '0'")
    connection.commit()
    connection.close()
    with pytest.raises(EsperError, match="schema version 0"):
        SqliteSink(path)


def _tables(path: Path) -> list[str]:
    return sorted(r[0] for r in _read(path, "SELECT name FROM sqlite_master WHERE type = 'table'"))


@pytest.mark.parametrize("schema", ["CREATE TABLE users (id INTEGER)",
                                    "CREATE TABLE meta (note TEXT); CREATE TABLE users (id INTEGER)"])
def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path, schema):
    path = tmp_path / "app.db"
    connection = sqlite3.connect(path)
    connection.executescript(schema)
    connection.close()
    before = path.read_bytes()
    with pytest.raises(EsperError, match=rf"telemetry sink 'sqlite' cannot use '{path}': the database holds "
                                         r"tables that are not Esper's \((meta, )?users\)"):
        SqliteSink(path)
    assert path.read_bytes() == before and "runs" not in _tables(path)


def test_a_file_that_is_no_database_or_a_folder_is_named(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("not a database, and long enough to have a header of its own\n" * 4)
    with pytest.raises(EsperError, match=f"cannot use '{text}': file is not a database"):
        SqliteSink(text)
    with pytest.raises(EsperError, match=f"cannot open '{tmp_path}'"):
        SqliteSink(tmp_path)


def test_an_empty_file_and_an_existing_run_database_are_used(tmp_path):
    (tmp_path / "empty.db").touch()
    SqliteSink(tmp_path / "empty.db").close()
    SqliteSink(tmp_path / "empty.db").close()  # the second run shares the first's database
    assert "runs" in _tables(tmp_path / "empty.db")
