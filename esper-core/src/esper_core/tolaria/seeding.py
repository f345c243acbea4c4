"""All seeding and device selection in one place."""

from __future__ import annotations

import random

import torch

from esper_core.errors import ConfigError


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy (if installed) and torch; optionally force deterministic kernels."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy ships with torch wheels
        pass
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; asking for a missing GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return device


#: Hosts below this many parameters train on one CPU thread by default. On an idle 2-core machine
#: a second thread changes the default CNN host's step by under 10 % either way (0.92× and 1.06× in
#: two measurements), but with one other process busy on a core, two threads made it 2.8× slower (benchmarks/bench_threads.py,
#: docs/benchmarks.md): one thread costs little and never collapses.
SMALL_HOST_PARAMS = 1_000_000


def choose_threads(requested: int, device: str, host_params: int) -> int | None:
    """Threads to give torch: ``requested`` if set, 1 for small hosts on CPU, else leave as is."""
    if requested > 0:
        return requested
    if device == "cpu" and host_params < SMALL_HOST_PARAMS:
        return 1
    return None
