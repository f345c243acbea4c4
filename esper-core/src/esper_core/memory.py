"""Refusing an allocation this machine cannot hold, before making it (torch-free).

Tasks keep their datasets in memory and build hosts whose size comes from options. A size far
beyond the machine (say ``train_size=2000000000``) would otherwise run for an hour and then be
killed by the kernel's out-of-memory killer, which leaves no message and a run directory with
nothing in it. :func:`require_memory` compares an estimate of the bytes with what the operating
system reports as available now (and, in a container, what its cgroup still allows), and
refuses with the option to lower. It only refuses what cannot fit; what fits but leaves too
little for the rest of the run is not guessed at.
"""

from __future__ import annotations

import os
from pathlib import Path

from esper_core.errors import ConfigError, EsperError, OutOfMemory

#: Bytes a float32 parameter trained with Adam holds: the weight, its gradient and the two
#: moment estimates (activations come on top).
TRAINED_BYTES_PER_PARAMETER = 16

_MEMINFO = Path("/proc/meminfo")
_CGROUP = Path("/sys/fs/cgroup")


def available_memory() -> int | None:
    """Bytes this process could still allocate without swapping, or ``None`` where the
    platform does not say (the check is then skipped): the smallest of Linux's
    ``MemAvailable``, the cgroup v2 limit less its usage, and ``SC_AVPHYS_PAGES`` elsewhere."""
    limits = [b for b in (_meminfo_available(), _cgroup_headroom()) if b is not None]
    if not limits:
        try:
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None
    return min(limits)


def _meminfo_available(meminfo: Path = _MEMINFO) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom(root: Path = _CGROUP) -> int | None:
    # memory.current counts the page cache too; its inactive part is reclaimed before the
    # out-of-memory killer acts, so it is not counted as used.
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        stat = dict(line.split() for line in (root / "memory.stat").read_text().splitlines())
        used -= int(stat.get("inactive_file", 0))
    except (OSError, ValueError):
        pass  # no breakdown: count all of it
    return max(0, int(limit) - used)


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps the number ≥ 1 (``3.2 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def require_memory(owner: str, *, what: str, needed: int, remedy: str,
                   error: type[EsperError] = ConfigError, available: int | None = None) -> None:
    """Raise ``error`` when ``needed`` bytes exceed the memory available
    (:func:`available_memory` unless ``available`` is given). The message reads
    "``owner``: ``what`` would need about X of memory, more than the Y this machine has available;
    ``remedy``"."""
    free = available_memory() if available is None else available
    if free is not None and needed > free:
        raise error(f"{owner}: {what} would need about {format_bytes(needed)} of memory, more than "
                    f"the {format_bytes(free)} this machine has available; {remedy}")


def is_allocation_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed allocation rather than a bug: Python's ``MemoryError``,
    torch's ``OutOfMemoryError`` (CUDA), or the ``RuntimeError`` its CPU and MPS allocators raise
    ("DefaultCPUAllocator: can't allocate memory", "not enough memory", "MPS backend out of
    memory"). Checked by name and wording, so this module never imports torch."""
    if isinstance(exc, MemoryError) or any(c.__name__ == "OutOfMemoryError" for c in type(exc).__mro__):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc).lower()
    return any(words in text for words in ("can't allocate memory", "not enough memory", "out of memory"))


def out_of_memory(exc: BaseException, *, doing: str) -> OutOfMemory:
    """The error to report for the allocation failure ``exc`` met while ``doing`` (e.g. "in
    task 'arrays' (its factory)", "during the run"): what failed and what to lower. The
    allocator's own words are kept, since they give the size it was asked for."""
    detail = " ".join(str(exc).split())
    # torch's CPU allocator prefixes "[enforce fail at alloc_cpu.cpp:…] err == 0. " to the
    # sentence that matters. What is available after the failure is not reported: the failed
    # allocation never happened, and a process limit (ulimit -v) is not what the system reports.
    detail = detail[detail.index("DefaultCPUAllocator"):] if "DefaultCPUAllocator" in detail else detail
    return OutOfMemory(
        f"ran out of memory{f' {doing}' if doing else ''} ({type(exc).__name__}"
        f"{f': {detail}' if detail else ''}). Lower what the run asks for (the task's sizes, "
        "the host's widths, --envs, batch sizes) or free memory on this machine")
