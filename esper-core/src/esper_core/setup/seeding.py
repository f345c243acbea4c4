"""All seeding and device selection in one place."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
        # cuBLAS is only deterministic with a fixed workspace; torch raises on CUDA matmuls
        # without it (see torch.use_deterministic_algorithms). Must be set before cuBLAS starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


#: torch takes generator seeds in ``[0, 2**64)`` (it reads a negative one modulo 2**64, and refuses
#: anything outside ``[-2**63, 2**64)`` with "Overflow when unpacking long long").
GENERATOR_SEED_MODULUS = 2**64

#: How far apart :func:`generator_seed` puts the streams of neighbouring run seeds: odd (so multiplying by
#: it is a bijection modulo 2**64) and larger than any epoch or episode count used in practice.
STREAM_STRIDE = 100_003


def generator_seed(seed: int, stream: int) -> int:
    """The generator seed of stream ``stream`` (an epoch, an episode) under run seed ``seed``.

    ``seed * 100_003 + stream``, reduced modulo 2**64 so that every accepted run seed (up to
    2**63 - 1) gives a seed ``torch.Generator().manual_seed`` takes. Below 2**64 the number is
    unchanged (seeded results stay as they were); above it, distinct run seeds still get distinct
    generators for each stream, since the stride is odd. Use it wherever a generator is seeded from
    a run seed plus an offset, instead of writing the formula out.
    """
    return (seed * STREAM_STRIDE + stream) % GENERATOR_SEED_MODULUS


class RngStream:
    """A private random stream: Python, NumPy and torch generator states kept apart from others.

    Environments trained side by side in one process would otherwise draw from one global
    generator, so each one's randomness would depend on how many others run and in what order.
    Each environment seeds its own stream once and runs every step inside :meth:`active`, which
    swaps its states in and back out (a few kilobytes; microseconds per epoch). One environment
    alone draws exactly the numbers ``seed_everything(seed)`` would have given it.
    """

    def __init__(self, seed: int, *, deterministic: bool = False, cuda: bool = False) -> None:
        self._cuda = cuda and torch.cuda.is_available()
        outer = self._capture()
        seed_everything(seed, deterministic=deterministic)
        self._state = self._capture()
        self._restore(outer)

    def _capture(self) -> dict[str, Any]:
        state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
        try:
            import numpy as np

            state["numpy"] = np.random.get_state()
        except ImportError:  # pragma: no cover - numpy ships with torch wheels
            pass
        if self._cuda:
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        random.setstate(state["python"])
        torch.set_rng_state(state["torch"])
        if "numpy" in state:
            import numpy as np

            np.random.set_state(state["numpy"])
        if "cuda" in state:
            torch.cuda.set_rng_state_all(state["cuda"])

    def state(self) -> dict[str, Any]:
        """The stream's saved states (for run checkpoints); only valid outside :meth:`active`."""
        return dict(self._state)

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (a :meth:`state` result) the next time the stream is active."""
        self._state = dict(state)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Run the block on this stream; the surrounding state is restored afterwards."""
        outer = self._capture()
        self._restore(self._state)
        try:
            yield
        finally:
            self._state = self._capture()
            self._restore(outer)


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; asking for a missing GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return device


#: Hosts below this many parameters train on one CPU thread by default. On an idle 2-core machine
#: a second thread changes the default CNN host's step by under 10 % either way (0.92× and 1.06× in
#: two measurements), but with one other process busy on a core, two threads made it 2.8× slower
#: (benchmarks/bench_threads.py, docs/benchmarks.md): one thread costs little and never collapses.
SMALL_HOST_PARAMS = 1_000_000


def choose_threads(requested: int, device: str, host_params: int) -> int | None:
    """Threads to give torch: ``requested`` if set, 1 for small hosts on CPU, else leave as is."""
    if requested > 0:
        return requested
    if device == "cpu" and host_params < SMALL_HOST_PARAMS:
        return 1
    return None
