from __future__ import annotations

import csv

import pytest
from structlog.testing import capture_logs

from esper_core.contracts.events import EpochEnded, GradientHealth
from esper_core.errors import ConfigError
from esper_telemetry.sinks.csv_metrics import METRIC_COLUMNS, CsvSink


def _rows(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_round_trip_one_row_per_epoch(tmp_path, recorded_events):
    sink = CsvSink.from_options(run_dir=tmp_path, options={})
    for event in recorded_events:
        sink.emit(event)
    sink.close()
    rows = _rows(tmp_path / "metrics.csv")
    epochs = [e for e in recorded_events if isinstance(e, EpochEnded)]
    assert len(rows) == len(epochs)
    for row, event in zip(rows, epochs, strict=True):
        assert int(row["epoch"]) == event.epoch
        assert float(row["val_accuracy"]) == event.val_accuracy
        assert float(row["train_loss"]) == event.train_loss
        assert int(row["seed_params"]) == event.seed_params
        for slot in event.slots:
            assert row[f"{slot['slot']}.stage"] == slot["stage"]
            assert float(row[f"{slot['slot']}.alpha"]) == slot["alpha"]
            expected = "" if slot["contribution"] is None else str(slot["contribution"])
            assert row[f"{slot['slot']}.contribution"] == expected
    assert list(rows[0])[: len(METRIC_COLUMNS)] == list(METRIC_COLUMNS)
    # The epoch's gradient-health report fills grad_score / grad_norm.
    assert [float(row["grad_score"]) for row in rows] == [0.6 if i == 6 else 1.0 for i in range(1, 11)]
    assert float(rows[1]["grad_norm"]) == 0.75


def test_gradient_columns_stay_empty_without_a_matching_report(tmp_path, recorded_events):
    sink = CsvSink(tmp_path / "metrics.csv")
    stale = next(e for e in recorded_events if isinstance(e, GradientHealth))  # epoch 1's
    epochs = [e for e in recorded_events if isinstance(e, EpochEnded)]
    sink.emit(stale)
    sink.emit(epochs[1])  # epoch 2: the report is not its own
    sink.emit(epochs[2])
    sink.close()
    rows = _rows(tmp_path / "metrics.csv")
    assert [(row["grad_score"], row["grad_norm"]) for row in rows] == [("", ""), ("", "")]


def test_rows_are_readable_before_close_and_resume_appends(tmp_path, recorded_events):
    epochs = [e for e in recorded_events if isinstance(e, EpochEnded)]
    first = CsvSink(tmp_path / "metrics.csv")
    for event in epochs[:4]:
        first.emit(event)
    # "Killed": no close(); every emitted epoch is already on disk.
    assert [int(r["epoch"]) for r in _rows(tmp_path / "metrics.csv")] == [1, 2, 3, 4]
    first.close()
    resumed = CsvSink(tmp_path / "metrics.csv")
    for event in epochs[4:]:
        resumed.emit(event)
    resumed.flush()
    resumed.close()
    rows = _rows(tmp_path / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, 11))  # one header only


def test_row_cap_warns_once_and_stops(tmp_path, recorded_events):
    sink = CsvSink.from_options(run_dir=tmp_path, options={"max_rows": 3})
    with capture_logs() as logs:
        for event in recorded_events:
            sink.emit(event)
    sink.close()
    assert [int(r["epoch"]) for r in _rows(tmp_path / "metrics.csv")] == [1, 2, 3]
    assert sum("cap" in log["event"] for log in logs) == 1


def test_byte_cap_keeps_the_file_under_the_limit(tmp_path, recorded_events):
    sink = CsvSink.from_options(run_dir=tmp_path, options={"max_bytes": 900, "max_rows": None})
    for event in recorded_events:
        sink.emit(event)
    sink.close()
    size = (tmp_path / "metrics.csv").stat().st_size
    assert 0 < size <= 900
    assert 1 <= len(_rows(tmp_path / "metrics.csv")) < 10


def test_a_slot_missing_from_the_header_is_warned_about(tmp_path, recorded_events):
    epochs = [e for e in recorded_events if isinstance(e, EpochEnded)]
    sink = CsvSink(tmp_path / "m.csv")
    sink.emit(EpochEnded(**{**_fields(epochs[0]), "slots": epochs[0].slots[:1]}))
    with capture_logs() as logs:
        sink.emit(epochs[1])
        sink.emit(epochs[2])
    sink.close()
    assert [log["slot"] for log in logs] == ["r1"]
    assert "r1.stage" not in _rows(tmp_path / "m.csv")[0]


def _fields(event):
    return {k: getattr(event, k) for k in ("run_id", "episode", "epoch", "timestamp",
                                           "train_loss", "val_loss", "val_accuracy",
                                           "host_params", "seed_params", "seconds")}


def test_paths_and_options(tmp_path):
    absolute = tmp_path / "elsewhere" / "x.csv"
    sink = CsvSink.from_options(run_dir=None, options={"path": str(absolute)})
    sink.close()
    assert absolute.exists()
    with pytest.raises(ConfigError, match="run directory"):
        CsvSink.from_options(run_dir=None, options={})
    with pytest.raises(ConfigError, match="unknown option 'rows'.*max_bytes, max_rows, path"):
        CsvSink.from_options(run_dir=tmp_path, options={"rows": 3})
    with pytest.raises(ConfigError, match="max_bytes"):
        CsvSink.from_options(run_dir=tmp_path, options={"max_bytes": -1})


def test_a_csv_path_never_appends_to_an_existing_file_or_another_run(tmp_path):
    run, other = tmp_path / "run", tmp_path / "other"
    run.mkdir()
    (other / "checkpoints").mkdir(parents=True)
    (other / "config.toml").write_text("[run]\n")
    (other / "metrics.csv").write_text("run_id\nother\n")
    (tmp_path / "notes.json").write_text('{"a": 1}\n')
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for path, message in ((tmp_path / "notes.json", "already exists"),
                          (other / "metrics.csv", "inside the run or dataset directory"),
                          (other / "new.csv", "inside the run or dataset directory"),
                          ("config.toml", "the run's own 'config.toml'")):
        with pytest.raises(ConfigError, match=rf"telemetry sink 'csv': path .*{message}"):
            CsvSink.from_options(run_dir=run, options={"path": str(path)})
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    # a resumed run (its first checkpoint left the marker) appends to the file it wrote
    (run / ".esper.checkpointed").touch()
    CsvSink.from_options(run_dir=run, options={"path": str(tmp_path / "notes.json")}).close()
