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


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own Esper cache (reused baselines), so no test reads another's results
    and none writes to the user's ``~/.cache``."""
    monkeypatch.setenv("ESPER_CACHE_DIR", str(tmp_path_factory.mktemp("esper-cache")))
