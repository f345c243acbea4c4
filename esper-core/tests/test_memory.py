"""Refusing an allocation the machine cannot hold (``esper_core.memory``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esper_core import memory
from esper_core.errors import ConfigError, DataError
from esper_core.memory import available_memory, format_bytes, require_memory

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
    assert str(caught.value) == ("task 't': train_size=9 images would need about 1.0 GiB of memory, more than "
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
    # Inactive page cache is reclaimable, so it does not count as used.
    (tmp_path / "memory.current").write_text("900\n")
    (tmp_path / "memory.stat").write_text("anon 400\ninactive_file 300\nactive_file 200\n")
    assert memory._cgroup_headroom(tmp_path) == 400
    (tmp_path / "memory.stat").write_text("not a breakdown\n")
    assert memory._cgroup_headroom(tmp_path) == 100


def test_available_memory_takes_the_tightest_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_meminfo_available", lambda: 5 * GiB)
    monkeypatch.setattr(memory, "_cgroup_headroom", lambda: 2 * GiB)
    assert available_memory() == 2 * GiB
    monkeypatch.setattr(memory, "_cgroup_headroom", lambda: None)
    assert available_memory() == 5 * GiB


def test_available_memory_of_this_machine_is_plausible() -> None:
    free = available_memory()
    assert free is None or 0 < free < 1 << 50
