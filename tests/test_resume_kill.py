"""Exact resume: ``esper run`` killed with SIGKILL at random points, then ``--resume``d, ends with
the same summary and bit-identical weights as an uninterrupted run (CPU, ``--deterministic``).

The configuration is the ``micro`` CNN task under the heuristic, whose first seed germinates
in ``block2`` after epoch 1 (TRAINING, with the seed path's own BatchNorm statistics for the
block downstream) and fossilizes at epoch 8, and whose second germinates in ``block3`` after
epoch 9 and blends from epoch 12: kills before, during and after the architecture changes all
have to rebuild the grown model from the recorded lifecycle.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from esper_core.telemetry.jsonl import read_events
from esper_core.testing.distributions import run_esper

ARGS = ["--log-level", "warning", "run", "--task", "micro", "--policy", "heuristic", "--seed", "0",
        "--device", "cpu", "--deterministic", "--no-compare-baseline", "--threads", "1"]
ENV = {"OMP_NUM_THREADS": "1"}
#: micro has 16 epochs: a kill once this many checkpoints were written (1 = a seed just
#: germinated into TRAINING; 8 = its fossilization; 12 = the second seed starts blending; 15)
#: plus a random extra delay.
KILL_AFTER_CHECKPOINTS = (1, 8, 12, 15)

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPER_")}
    env.update(ENV)
    return env


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in {"wall_seconds", "run_id"}}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)["state_dict"]


def _events_without_time(run_dir: Path) -> list[dict[str, Any]]:
    # config holds --out; summary.json is compared on its own.
    drop = {"timestamp", "seconds", "wall_seconds", "run_id", "summary", "config"}
    return [{k: v for k, v in e.items() if k not in drop} for e in read_events(run_dir / "events.jsonl")]


def _written_checkpoints(run_dir: Path) -> int:
    """Checkpoints written so far: the newest file's epoch (older ones are pruned)."""
    folder = run_dir / "checkpoints"
    names = sorted(p.name for p in folder.glob("ep*-epoch*.pt")) if folder.is_dir() else []
    return int(names[-1].split("epoch")[1][:5]) if names else 0


def _run_and_kill(out: Path, after: int, extra_delay: float) -> int:
    """Start a run, SIGKILL it once ``after`` checkpoints exist plus ``extra_delay`` seconds;
    returns the epoch of the newest checkpoint at the kill (the run must not have finished)."""
    proc = subprocess.Popen([sys.executable, "-c", "from esper_core.cli.main import main; main()",
                             *ARGS, "--out", str(out)], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _written_checkpoints(out) < after:
        assert proc.poll() is None, f"the run ended before checkpoint {after}: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(extra_delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists(), "killed too late: the run had finished"
    return _written_checkpoints(out)


def test_sigkill_at_random_points_then_resume_is_exact(tmp_path):
    reference = tmp_path / "reference"
    done = run_esper([*ARGS, "--out", str(reference)], env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["seeds"] and summary["seeds"][0]["outcome"] == "fossilized", summary["seeds"]
    expected_weights = _weights(reference)
    expected_events = _events_without_time(reference)

    rng = random.Random(12)
    seen = []
    for after in KILL_AFTER_CHECKPOINTS:
        out = tmp_path / f"killed-{after}"
        at = _run_and_kill(out, after, extra_delay=rng.uniform(0.0, 0.12))
        seen.append(at)
        assert len(list((out / "checkpoints").glob("*.pt"))) <= 2  # checkpoint_keep = 2
        resumed = run_esper(["--log-level", "warning", "run", "--resume", str(out)], env=ENV)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert _comparable(json.loads((out / "summary.json").read_text())) == _comparable(summary)
        weights = _weights(out)
        assert weights.keys() == expected_weights.keys()
        for name, tensor in expected_weights.items():
            assert torch.equal(weights[name], tensor), f"{name} differs after a kill at checkpoint {at}"
        # Telemetry continues where the checkpoint left it: no event lost or repeated.
        assert _events_without_time(out) == expected_events
    assert len(set(seen)) >= 3, seen


def test_sigint_stops_after_a_checkpoint_and_the_run_resumes(tmp_path):
    out = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-c", "from esper_core.cli.main import main; main()",
                             *ARGS, "--out", str(out)], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _written_checkpoints(out) < 3:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert f"continue with `esper run --resume {out}`" in stderr
    stopped = _written_checkpoints(out)
    assert 3 <= stopped < 16 and not (out / "summary.json").exists()
    resumed = run_esper(["--log-level", "warning", "run", "--resume", str(out)], env=ENV)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["epochs"] == 16
