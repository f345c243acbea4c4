"""Telemetry in real ``esper run`` runs of the default task (small): the gradient_health
observer end to end, a run killed mid-epoch, and a sink that raises during a run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import types
from pathlib import Path

from click.testing import CliRunner
from structlog.testing import capture_logs

from esper_core.config import RunConfig
from esper_core.contracts.events import event_from_record
from esper_core.contracts.specs import SinkSpec
from esper_core.markers import hookimpl
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.testing.distributions import run_esper
from esper_core.tolaria.job import execute_run
from esper_telemetry.commands import runs

SMALL = ["--task", "shapes", "--task-option", "train_size=200", "--task-option", "val_size=100",
         "--no-compare-baseline", "--threads", "1"]


def _start(args: list[str]) -> subprocess.Popen[str]:
    """``esper ARGS`` in a fresh interpreter (like run_esper, without waiting)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPER_")}
    return subprocess.Popen(
        [sys.executable, "-c", "from esper_core.cli.main import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_cli_run_records_gradient_health_and_leaves_results_unchanged(tmp_path):
    """Same seed, --deterministic, with and without the observer: identical accuracies."""
    common = [*SMALL, "--epochs", "2", "--deterministic", "--telemetry", "jsonl,csv"]
    watched = _start(["run", *common, "--out", str(tmp_path / "watched")])
    plain = _start(["run", *common, "--observers", "", "--out", str(tmp_path / "plain")])
    for process in (watched, plain):
        _, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
    events = {name: _records(tmp_path / name / "events.jsonl") for name in ("watched", "plain")}
    health = [e for e in events["watched"] if e["kind"] == "gradient_health"]
    assert [(h["epoch"], h["profile"], h["steps"]) for h in health] == [(1, "minimal", 7),
                                                                        (2, "minimal", 7)]
    assert all(h["score"] == 1.0 and h["global_norm_mean"] > 0 and h["layers"] == []
               for h in health)
    assert not [e for e in events["plain"] if e["kind"] == "gradient_health"]
    started = next(e for e in events["watched"] if e["kind"] == "run_started")
    assert "gradient_health" in started["config"]["run"]["observers"]

    def curve(name):
        return [(e["epoch"], e["train_loss"], e["val_loss"], e["val_accuracy"])
                for e in events[name] if e["kind"] == "epoch"]

    assert curve("watched") == curve("plain") and len(curve("plain")) == 2
    summaries = {name: json.loads((tmp_path / name / "summary.json").read_text())
                 for name in ("watched", "plain")}
    for key in ("final_accuracy", "best_accuracy", "seeds"):
        assert summaries["watched"][key] == summaries["plain"][key]
    header, *rows = (tmp_path / "watched" / "metrics.csv").read_text().splitlines()
    score_column = header.split(",").index("grad_score")
    assert [row.split(",")[score_column] for row in rows] == ["1.0", "1.0"]


def test_cli_bad_profile_is_a_one_line_error_with_exit_2(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[observers.gradient_health]\nprofile = "verbose"\n', encoding="utf-8")
    result = run_esper(["run", "--config", str(config), *SMALL, "--epochs", "1",
                        "--out", str(tmp_path / "out")])
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: observer 'gradient_health' option 'profile' = 'verbose' is invalid; expected one of "
        "'minimal', 'standard', 'diagnostic'")
    assert "Traceback" not in result.stderr


def test_killed_run_leaves_a_readable_jsonl_and_database(tmp_path):
    out = tmp_path / "killed"
    process = _start(["run", "--task", "shapes", "--task-option", "train_size=600",
                      "--task-option", "val_size=100", "--no-compare-baseline", "--threads", "1",
                      "--epochs", "40", "--telemetry", "jsonl,sqlite", "--out", str(out)])
    events = out / "events.jsonl"
    deadline = time.monotonic() + 120
    try:
        # The epoch's reward follows its EpochEnded, which the sqlite sink commits: once the
        # reward line is there, epoch 1 is in both files and epoch 2 is training.
        while '"kind": "reward"' not in (events.read_text() if events.exists() else ""):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no epoch recorded within 120 s"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)  # mid-way through the next epoch
        process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    text = events.read_text(encoding="utf-8")
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]  # every line parses
    for record in records:
        event_from_record(record)
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "run_started" and "epoch" in kinds and "gradient_health" in kinds
    assert "run_ended" not in kinds

    database = out / "run.sqlite"
    with sqlite3.connect(database) as connection:  # opens and answers queries
        assert connection.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] >= 1
    listed = CliRunner().invoke(runs, ["list", "--db", str(database)])
    assert listed.exit_code == 0, listed.output
    (row,) = [line for line in listed.output.splitlines() if line.startswith("killed")]
    assert "running" in row.split()
    shown = CliRunner().invoke(runs, ["show", "killed", "--db", str(database)])
    assert shown.exit_code == 0, shown.output
    assert "killed" in shown.output


class _Broken:
    """A sink that fails on its fifth event."""

    name = "broken"
    emitted = 0

    def emit(self, event):
        type(self).emitted += 1
        if type(self).emitted == 5:
            raise OSError("disk full")

    def flush(self):
        pass

    def close(self):
        pass


def _broken_sink_plugin():
    module = types.ModuleType("broken_sink")

    @hookimpl
    def esper_register_telemetry_sinks():
        return [SinkSpec(name="broken", factory=lambda *, run_dir, options: _Broken(),
                         description="raises once")]

    module.esper_register_telemetry_sinks = esper_register_telemetry_sinks
    return module


def test_a_raising_sink_does_not_stop_a_real_run(tmp_path):
    loaded = load_plugins(PluginSettings(autoload=True), extra=[("broken", _broken_sink_plugin())])
    catalog = build_catalog(loaded)
    config = RunConfig.from_dict({
        "run": {"task": "shapes", "policy": "heuristic", "epochs": 2, "compare_baseline": False,
                "telemetry": ["jsonl", "broken", "sqlite"], "threads": 1},
        "task": {"train_size": 200, "val_size": 100},
    })
    out = create_run_dir(tmp_path / "survivor")
    _Broken.emitted = 0
    with capture_logs() as logs:
        summary = execute_run(resolve_run(config, catalog), catalog, out)
    assert summary["epochs"] == 2 and (out / "summary.json").is_file()
    failures = [entry for entry in logs if entry.get("log_level") == "warning"
                and "sink" in entry.get("event", "")]
    assert len(failures) == 1 and failures[0]["sink"] == "broken"
    assert "disk full" in failures[0]["error"]
    assert _Broken.emitted == 5  # disabled after its failure: no further events
    records = _records(out / "events.jsonl")
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "run_started" and kinds[-1] == "run_ended"
    assert kinds.count("epoch") == 2 and kinds.count("gradient_health") == 2
    with sqlite3.connect(out / "run.sqlite") as connection:
        stored = connection.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        status = connection.execute("SELECT status FROM runs").fetchone()[0]
    assert stored == len(records) and status == "finished"
