"""Suite-wide fixtures for every distribution's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Undo the logging configuration an in-process CLI call makes (``esper --log-level error``
    filters below ERROR for the rest of the process), so ``capture_logs`` sees every event.

    Log context bound by the code under test and left bound fails the test that leaked it: it
    would otherwise land on whichever test the worker runs next, which fails only in some orders
    (a refused run once left its ``run_id`` on a later test's JSON records)."""
    yield
    structlog.reset_defaults()
    leaked = structlog.contextvars.get_contextvars()
    structlog.contextvars.clear_contextvars()
    if leaked:
        pytest.fail(f"the test left log context bound: {sorted(leaked)}")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own Esper cache (reused baselines), so no test reads another's results
    and none writes to the user's ``~/.cache``."""
    monkeypatch.setenv("ESPER_CACHE_DIR", str(tmp_path_factory.mktemp("esper-cache")))
