"""Shared fixtures for esper-core tests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from esper_core.testing.distributions import make_distribution

sys.path.insert(0, str(Path(__file__).parent))  # engine_helpers.py


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing throw-away distributions into one temp dir (returned)."""
    root = tmp_path / "site"

    def factory(**kwargs: str) -> Path:
        return make_distribution(root, **kwargs)

    return factory


@pytest.fixture
def recorded_events():
    """One of every telemetry event type, as a sink would receive them."""
    from esper_core.testing import sample_event_stream

    return sample_event_stream()
