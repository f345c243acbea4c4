"""Refusing datasets that cannot fit in memory, before anything is allocated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esper_blueprints_cnn.tasks import memory
from esper_blueprints_cnn.tasks.memory import available_memory, format_bytes, require_memory
from esper_blueprints_cnn.tasks.procedural import make_micro_task, make_shapes_task, shapes_bytes
from esper_core.errors import ConfigError, DataError
from esper_core.testing.distributions import run_esper

GiB = 1 << 30


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (3 * GiB // 2, "1.5 GiB"), (5000 * GiB * 1024, "5000.0 TiB")],
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text


def test_require_memory_refuses_only_what_does_not_fit() -> None:
    require_memory("task 't'", what="x", needed=GiB, remedy="lower it", available=GiB)
    with pytest.raises(ConfigError) as caught:
        require_memory("task 't'", what="train_size=9 images", needed=GiB + 1, remedy="lower train_size",
                       available=GiB)
    assert str(caught.value) == ("task 't': train_size=9 images need about 1.0 GiB of memory, more than "
                                 "the 1.0 GiB this machine has available; lower train_size")
    with pytest.raises(DataError):
        require_memory("f", what="x", needed=2, remedy="r", error=DataError, available=1)


def test_unknown_memory_skips_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    require_memory("t", what="x", needed=1 << 60, remedy="r")


def test_meminfo_and_cgroup_are_read(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:    2000000 kB\n")
    assert memory._meminfo_available(meminfo) == 2_000_000 * 1024
    meminfo.write_text("MemTotal: 1 kB\n")
    assert memory._meminfo_available(meminfo) is None
    assert memory._meminfo_available(tmp_path / "missing") is None
    (tmp_path / "memory.max").write_text("max\n")
    assert memory._cgroup_headroom(tmp_path) is None
    (tmp_path / "memory.max").write_text("1000\n")
    (tmp_path / "memory.current").write_text("400\n")
    assert memory._cgroup_headroom(tmp_path) == 600
    (tmp_path / "memory.current").write_text("4000\n")
    assert memory._cgroup_headroom(tmp_path) == 0


def test_available_memory_takes_the_tightest_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_meminfo_available", lambda: 5 * GiB)
    monkeypatch.setattr(memory, "_cgroup_headroom", lambda: 2 * GiB)
    assert available_memory() == 2 * GiB
    monkeypatch.setattr(memory, "_cgroup_headroom", lambda: None)
    assert available_memory() == 5 * GiB


def test_available_memory_of_this_machine_is_plausible() -> None:
    free = available_memory()
    assert free is None or 0 < free < 1 << 50


def test_procedural_sizes_beyond_memory_are_refused_naming_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: 64 << 20)
    with pytest.raises(ConfigError, match=r"^task 'micro': train_size=100000 images of 16×16 pixels need "
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
    assert "train_size=2000000000 images of 16×16 pixels need about" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "summary.json").exists()
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout or "")
