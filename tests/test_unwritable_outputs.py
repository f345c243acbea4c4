"""Every command that writes refuses an output path it cannot write with one line on stderr and
exit 2, before any work (discover before its search) and without leaving anything behind; also
with JSON logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from esper_core.testing.distributions import run_esper

# (command line with {out} for the output path, is the output a directory)
WRITERS = {
    "run": (["run", "--epochs", "1", "--out", "{out}"], True),
    "new-plugin": (["new-plugin", "esper-unwritable", "--dir", "{out}"], True),
    "discover": (["discover", "--budget", "2", "--out", "{out}"], False),
    "collect": (["collect", "--policy", "random", "--episodes", "1", "--epochs", "1", "--out", "{out}"], True),
    "report": (["report", "{run}", "--out", "{out}"], True),
    "export": (["export", "{run}", "--out", "{out}"], False),
    "evaluate": (["evaluate", "--policy-checkpoint", "{run}/policy.pt", "--out", "{out}"], False),
}


def _unwritable(tmp_path: Path, kind: str) -> Path:
    if kind == "under-a-file":
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        return blocker / "sub" / "out"
    return Path("/proc/esper-unwritable-test/out")  # no file can be created in /proc, even as root


@pytest.mark.parametrize("kind", ["under-a-file", "special-filesystem"])
@pytest.mark.parametrize("command", sorted(WRITERS))
def test_an_unwritable_output_is_one_line(tmp_path, command, kind):
    if kind == "special-filesystem" and not Path("/proc/self").exists():
        pytest.skip("needs /proc")
    out = _unwritable(tmp_path, kind)
    args, _ = WRITERS[command]
    run_dir = tmp_path / "some-run"
    run_dir.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    done = run_esper(["--log-format", "json", *[a.format(out=out, run=run_dir) for a in args]],
                     env={"OMP_NUM_THREADS": "1"}, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert str(out) in lines[0] and ("not writable" in lines[0] or "not a directory" in lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == before
