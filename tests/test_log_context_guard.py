"""The suite's guard against leaked log context (``_fresh_structlog`` in the root conftest): a
test that leaves structlog context variables bound fails itself, in whatever order tests run,
instead of failing whichever test a worker runs next."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

TESTS = '''
import structlog


def test_leaks():
    structlog.contextvars.bind_contextvars(run_id="refused-run")


def test_runs_after_it_and_sees_nothing_bound():
    assert structlog.contextvars.get_contextvars() == {}


def test_binds_for_its_own_duration_only():
    with structlog.contextvars.bound_contextvars(run_id="a-run"):
        pass
'''


def test_a_test_that_leaves_log_context_bound_fails_and_the_next_starts_clean(tmp_path):
    shutil.copy(ROOT_CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_leak.py").write_text(TESTS)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                             "test_leak.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "ERROR at teardown of test_leaks" in out and "the test left log context bound: ['run_id']" in out, out
    assert "3 passed, 1 error" in out, out
