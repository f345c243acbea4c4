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


# -- a failed allocation is reported as the machine's limit, not as a bug or a plugin's fault ----

class OutOfMemoryError(RuntimeError):
    """Named as torch's CUDA allocator error is (torch.OutOfMemoryError), without importing torch."""


CPU_ALLOCATOR = ("[enforce fail at alloc_cpu.cpp:117] err == 0. DefaultCPUAllocator: can't allocate memory: "
                 "you tried to allocate 65536 bytes. Error code 12 (Cannot allocate memory)")


@pytest.mark.parametrize(
    ("exc", "failed"),
    [
        (MemoryError(), True),
        (RuntimeError(CPU_ALLOCATOR), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 1.2 GB)"), True),
        (OutOfMemoryError("CUDA error"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)"), False),
        (ValueError("not enough memory"), False),  # only allocators' errors: RuntimeError and MemoryError
        (KeyError("memory"), False),
    ],
)
def test_is_allocation_failure(exc: BaseException, failed: bool) -> None:
    assert memory.is_allocation_failure(exc) is failed


def test_out_of_memory_keeps_the_allocators_sentence_and_names_the_remedy() -> None:
    error = memory.out_of_memory(RuntimeError(CPU_ALLOCATOR), doing="during the run")
    assert str(error) == (
        "ran out of memory during the run (RuntimeError: DefaultCPUAllocator: can't allocate memory: you tried "
        "to allocate 65536 bytes. Error code 12 (Cannot allocate memory)). Lower what the run asks for (the "
        "task's sizes, the host's widths, --envs, batch sizes) or free memory on this machine")
    assert str(memory.out_of_memory(MemoryError(), doing="")).startswith("ran out of memory (MemoryError). Lower")


def test_blame_reports_an_allocation_failure_as_out_of_memory_not_as_the_plugins_error() -> None:
    from esper_core.errors import OutOfMemory, PluginError
    from esper_core.plugins.blame import blame, blame_plugin_code

    factory = blame("task", "arrays", "some_plugin.tasks", "its factory")
    with pytest.raises(OutOfMemory, match=r"^ran out of memory in task 'arrays' \(its factory\) \(MemoryError\)"), \
            factory:
        raise MemoryError
    factory = blame("task", "arrays", "some_plugin.tasks", "its factory")
    with pytest.raises(PluginError, match="task 'arrays'"), factory:  # any other failure stays the plugin's
        raise RuntimeError("boom")
    with pytest.raises(OutOfMemory, match=r"^ran out of memory during the run \(RuntimeError: DefaultCPU"), \
            blame_plugin_code("during the run"):
        raise RuntimeError(CPU_ALLOCATOR)


def test_the_cli_reports_a_failed_allocation_in_one_line_with_exit_2() -> None:
    import click
    from click.testing import CliRunner

    from esper_core.cli.errors import EsperGroup

    @click.command("grow")
    def grow() -> None:
        raise RuntimeError(CPU_ALLOCATOR)

    @click.command("buggy")
    def buggy() -> None:
        raise RuntimeError("index 3 is out of bounds")

    group = EsperGroup("esper")
    group.add_command(grow)
    group.add_command(buggy)
    result = CliRunner().invoke(group, ["grow"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: ran out of memory (RuntimeError: DefaultCPUAllocator: can't allocate")
    assert "Traceback" not in result.output
    other = CliRunner().invoke(group, ["buggy"])  # (code defined here counts as plugin code)
    assert other.output.startswith("Error: plugin code ") and "out of memory" not in other.output
