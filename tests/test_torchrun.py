"""``torchrun --nproc-per-node 2`` (gloo, CPU): data-parallel host training with agreed lifecycle
decisions; every rank ends with the same architecture and bit-identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from esper_core.telemetry.jsonl import read_events

pytestmark = [pytest.mark.slow, pytest.mark.distributed,
              pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")]


def test_two_gloo_ranks_grow_the_same_model(tmp_path):
    out = tmp_path / "run"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPER_")}
    env.update({"OMP_NUM_THREADS": "1", "TMPDIR": str(scratch)})
    esper = Path(sys.executable).parent / "esper"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", str(esper),
         "--log-level", "warning", "run", "--task", "micro", "--seed", "0", "--device", "cpu",
         "--deterministic", "--no-compare-baseline", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    digests = summary["distributed"]["model_sha256"]
    assert summary["distributed"]["world_size"] == 2 and len(digests) == 2 and digests[0] == digests[1]
    stages = [e["to_stage"] for e in read_events(out / "events.jsonl") if e["kind"] == "seed_lifecycle"]
    assert "GERMINATED" in stages and "BLENDING" in stages, stages
    # Only rank 0 wrote a run directory; rank 1's temporary one is gone.
    assert not list(scratch.glob("esper-rank*"))
    assert (out / "model.pt").is_file() and list((out / "checkpoints").glob("*.pt"))
