"""benchmarks/pool_held_out.py pools one training's evaluation sets and refuses sets that differ."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def sweep_file(path: Path, heuristic: list[float], iql: list[float]) -> Path:
    # The shape iql_sweep.py writes: behaviour rows, and variants by name.
    row = {"test_accuracies": [50.0] * len(heuristic)}
    path.write_text(json.dumps({"behaviours": [{"policy": "heuristic", "returns": heuristic, **row}],
                                "variants": {"v": {"returns": iql, **row}}}))
    return path


def pool(tmp_path: Path, *trainings: str) -> subprocess.CompletedProcess[str]:
    args = [a for t in trainings for a in ("--training", t)]
    return subprocess.run([sys.executable, str(BENCHMARKS / "pool_held_out.py"), *args, "--rows", "v",
                           "--out", str(tmp_path / "pooled.md")], capture_output=True, text=True, check=False)


def test_sets_pool_into_one_sample_per_training(tmp_path: Path) -> None:
    a = sweep_file(tmp_path / "a.json", [1.0, 2.0, 3.0], [1.5, 2.0, 3.5])
    b = sweep_file(tmp_path / "b.json", [0.0, 1.0], [0.0, 0.5])
    result = pool(tmp_path, f"0={a},{b}")
    assert result.returncode == 0, result.stderr
    pooled = json.loads((tmp_path / "pooled.json").read_text())["v - heuristic"]["0"]
    assert [s["mean"] for s in pooled["per_set"]] == [1 / 3, -0.25]
    assert pooled["pooled"]["n"] == 5 and abs(pooled["pooled"]["mean"] - 0.1) < 1e-12


def test_a_set_with_other_episodes_is_refused(tmp_path: Path) -> None:
    a = sweep_file(tmp_path / "a.json", [1.0, 2.0], [1.0, 2.0])
    other = sweep_file(tmp_path / "other.json", [1.0, 9.0], [1.0, 2.0])
    result = pool(tmp_path, f"0={a}", f"1={other}")
    assert result.returncode == 1
    assert "training 1's file 1 holds other heuristic episodes" in result.stderr
    assert not (tmp_path / "pooled.md").exists()
