"""The procedural tasks refuse sizes that cannot fit in memory, before drawing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esper_blueprints_cnn.tasks.procedural import make_micro_task, make_shapes_task, shapes_bytes
from esper_core import memory
from esper_core.errors import ConfigError
from esper_core.testing.distributions import run_esper


def test_procedural_sizes_beyond_memory_are_refused_naming_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: 64 << 20)
    with pytest.raises(ConfigError, match=r"^task 'micro': train_size=100000 images of 16×16 pixels would need "
                                          r"about .* more than the 64\.0 MiB this machine has available; "
                                          r"lower train_size \(or image_size\)$"):
        make_micro_task(seed=0, device="cpu", options={"train_size": 100_000})
    with pytest.raises(ConfigError, match="^task 'shapes': test_size=30000 images of 32×32 pixels"):
        make_shapes_task(seed=0, device="cpu", options={"test_size": 30_000})
    with pytest.raises(ConfigError, match="^task 'shapes': train_size=10 images of 2000×2000 pixels"):
        make_shapes_task(seed=0, device="cpu", options={"image_size": 2000, "train_size": 10})


def test_the_estimate_covers_the_images() -> None:
    # The pixels alone, padded for the crop, are a lower bound of the estimate.
    assert shapes_bytes(1000, size=16, padding=4) > 1000 * 24 * 24 * 3


def test_a_cached_dataset_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # A learned controller builds a task per episode; the images are generated once and then
    # hold memory, so a second check would count them against themselves.
    options = {"train_size": 300, "epoch_size": 200, "val_size": 100, "test_size": 100, "data_seed": 91}
    make_micro_task(seed=0, device="cpu", options=options)
    monkeypatch.setattr(memory, "available_memory", lambda: 0)
    make_micro_task(seed=1, device="cpu", options=options)
    with pytest.raises(ConfigError, match="train_size=301"):
        make_micro_task(seed=1, device="cpu", options={**options, "train_size": 301})


def test_the_cli_refuses_an_impossible_size_at_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_esper(
        ["run", "--task", "micro", "--task-option", "train_size=2000000000", "--out", str(out), "--json"],
        cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "train_size=2000000000 images of 16×16 pixels would need about" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()  # refused before the run directory is made
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout or "")


def test_a_host_beyond_memory_is_refused_naming_widths(monkeypatch: pytest.MonkeyPatch) -> None:
    task = make_micro_task(seed=0, device="cpu", options={"widths": "64,64"})
    needed = 16 * task.host_config.parameter_count
    monkeypatch.setattr(memory, "available_memory", lambda: needed - 1)
    with pytest.raises(ConfigError, match=r"^task 'micro': a host of widths 64,64 \(\d[\d,]* parameters, trained "
                                          r"with Adam\) would need about .*; lower widths$"):
        task.build_host()
    monkeypatch.setattr(memory, "available_memory", lambda: needed)
    assert sum(p.numel() for p in task.build_host().parameters()) == task.host_config.parameter_count


def test_the_cli_refuses_a_host_beyond_memory(tmp_path: Path) -> None:
    result = run_esper(["run", "--task", "micro", "--task-option", "widths=200000,200000", "--out",
                        str(tmp_path / "run")], cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "a host of widths 200000,200000" in result.stderr and "lower widths" in result.stderr
    assert "Traceback" not in result.stderr
