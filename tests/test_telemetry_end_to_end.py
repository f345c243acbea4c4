"""Telemetry on real runs: sinks chosen by name, `esper runs`, `esper report`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from esper_core.telemetry.jsonl import read_events
from esper_core.testing.distributions import run_esper

TINY = """
[run]
epochs = 3
compare_baseline = false
telemetry = ["jsonl", "sqlite", "csv"]
[task]
train_size = 128
val_size = 64
[telemetry.sqlite]
path = "{db}"
"""


def _run(tmp_path: Path, name: str, seed: int, db: Path) -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(TINY.format(db=db))
    out = tmp_path / "runs" / name
    result = run_esper(["run", "--config", str(config), "--seed", str(seed), "--out", str(out)], cwd=tmp_path,
                       env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_two_real_runs_in_one_database_compare_and_report(tmp_path):
    db = tmp_path / "runs" / "runs.sqlite"
    a, b = _run(tmp_path, "a", 0, db), _run(tmp_path, "b", 1, db)
    with sqlite3.connect(db) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master where type='table'")}
    assert {"runs", "epochs"} <= tables
    for out in (a, b):
        assert (out / "metrics.csv").read_text().count("\n") >= 4  # header + 3 epochs
        assert [e["kind"] for e in read_events(out / "events.jsonl")][-1] == "run_ended"

    listed = run_esper(["runs", "list", "--db", str(db)], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "a" in listed.stdout and "b" in listed.stdout
    compared = run_esper(["runs", "compare", "a", "b", "--db", str(db)], cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    for out in (a, b):
        final = json.loads((out / "summary.json").read_text())["final_accuracy"]
        assert f"{final:.2f}" in compared.stdout
    unknown = run_esper(["runs", "show", "zzz", "--db", str(db)], cwd=tmp_path)
    assert unknown.returncode == 2 and "zzz" in unknown.stderr

    report = run_esper(["report", str(a)], cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    pngs = list(a.rglob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert list(a.rglob("report.html"))
