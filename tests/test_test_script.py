"""``scripts/test.sh`` (the README's test command) answers ``--help`` itself."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_help_prints_the_usage_and_runs_nothing():
    done = subprocess.run(["bash", str(ROOT / "scripts" / "test.sh"), "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "bash scripts/test.sh --all" in done.stdout and "--no-lint" in done.stdout
    # Neither the linters nor pytest ran: their output would follow the usage.
    assert "All checks passed" not in done.stdout and "passed" not in done.stdout.replace("passed through", "")
