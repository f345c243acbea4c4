"""Suite-wide fixtures for every distribution's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Undo the logging configuration an in-process CLI call makes (``esper --log-level error``
    filters below ERROR for the rest of the process), so ``capture_logs`` sees every event."""
    yield
    structlog.reset_defaults()
