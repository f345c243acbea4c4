"""A run directory belongs to one process, and nothing in it is silently damaged: the lock
(held by another process, released when its holder dies), --out left as found after an early
failure, a truncated events file refused on resume, SIGTERM handled like Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import types

import pytest

from esper_core import hookimpl
from esper_core.config import RunConfig
from esper_core.contracts import Decision, PolicySpec
from esper_core.errors import CheckpointError, ConfigError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.run_checkpoint import list_checkpoints
from esper_core.storage.rundir import (
    LOCK_FILE,
    RunDirBusy,
    RunDirLock,
    create_run_dir,
    first_missing,
    lock_holder,
    own_run_dir,
)
from esper_core.testing import toy
from esper_core.testing.distributions import run_esper
from esper_core.tolaria.interrupts import RunInterrupted
from esper_core.tolaria.job import execute_run

HOLD = """
import sys
from pathlib import Path
from esper_core.storage.rundir import RunDirLock
lock = RunDirLock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path/run until the test ends."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    yield run_dir, process
    process.kill()
    process.wait()


def test_a_second_process_is_refused_naming_the_holder(holder):
    run_dir, process = holder
    with pytest.raises(RunDirBusy, match=rf"is in use by another Esper process \(pid {process.pid}\)"):
        RunDirLock.acquire(run_dir)
    assert lock_holder(run_dir) == process.pid
    with pytest.raises(RunDirBusy, match=rf"--out .* is in use by another Esper process \(pid {process.pid}\)"):
        create_run_dir(run_dir)


def test_the_lock_dies_with_its_holder(holder):
    run_dir, process = holder
    process.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
    process.wait()
    assert lock_holder(run_dir) is None
    lock = RunDirLock.acquire(run_dir)
    assert (run_dir / LOCK_FILE).read_text().strip() == str(os.getpid())
    lock.release()


def test_cli_resume_of_a_locked_run_is_refused(holder):
    run_dir, process = holder
    (run_dir / "config.toml").write_text('[run]\ntask = "shapes"\nepochs = 2\n')
    before = sorted(p.name for p in run_dir.iterdir())
    done = run_esper(["run", "--resume", str(run_dir)], env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"is in use by another Esper process (pid {process.pid})" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == before


@pytest.mark.parametrize("existed", [True, False])
def test_a_new_run_failing_before_its_first_checkpoint_leaves_out_as_found(tmp_path, existed):
    out = tmp_path / "a" / "b" / "run"
    if existed:
        out.mkdir(parents=True)
    created = first_missing(out)
    assert created == (None if existed else tmp_path / "a")
    create_run_dir(out)
    with pytest.raises(ZeroDivisionError), own_run_dir(out, resume=False, created=created):
        (out / "config.toml").write_text("x")
        (out / "events.jsonl").write_text("{}\n")
        raise ZeroDivisionError
    if existed:
        assert out.is_dir() and not list(out.iterdir())
    else:
        assert not (tmp_path / "a").exists()


def test_a_run_with_a_checkpoint_keeps_its_files_for_resume(tmp_path):
    out = create_run_dir(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt), own_run_dir(out, resume=False, created=out):
        (out / "checkpoints").mkdir()
        (out / "checkpoints" / "ep0000-epoch00001.pt").write_bytes(b"x")
        raise KeyboardInterrupt
    assert (out / "checkpoints" / "ep0000-epoch00001.pt").is_file()
    assert lock_holder(out) is None


@pytest.mark.parametrize(("args", "needle"), [
    (["--task-option", "no_such_option=1"], "no_such_option"),
    (["--config", "{sink_config}"],
     "telemetry sink 'jsonl' option 'max_bytes' = -1 is invalid; expected an integer ≥ 1"),
], ids=["bad-task-option", "sink-cannot-start"])
def test_cli_a_run_failing_before_its_first_epoch_leaves_out_as_found(tmp_path, args, needle):
    sink_config = tmp_path / "sink.toml"
    sink_config.write_text("[telemetry.jsonl]\nmax_bytes = -1\n")
    out = tmp_path / "new" / "run"
    done = run_esper(["run", *[a.format(sink_config=sink_config) for a in args], "--out", str(out)],
                     env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 2 and needle in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "new").exists()


# In process, on the toy topology.
class Stopping:
    """Sends its own process SIGTERM after epoch 2, as a scheduler would."""

    def __init__(self, context):
        self.context = context
        self.n = 0

    def reset(self, *, episode):
        pass

    def decide(self, *, report, mask):
        if report.epoch == 2 and self.n == 1:  # not again after the resume
            os.kill(os.getpid(), signal.SIGTERM)
        self.n += 1
        return Decision.wait(f"step {self.n}")

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = state["n"]


@pytest.fixture(scope="module")
def catalog():
    module = types.ModuleType("ownership_policies")

    @hookimpl
    def esper_register_policies():
        return [PolicySpec(name="stopping", factory=Stopping, description="test")]

    module.esper_register_policies = esper_register_policies
    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("p", module)]))


def _run(catalog, out, *, resume=False):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "stopping", "epochs": 6, "seed": 1,
                                          "compare_baseline": False, "checkpoint_keep": 10, "out": str(out)}})
    if not resume:
        create_run_dir(out)
    return execute_run(resolve_run(config, catalog), catalog, out, resume=resume)


def test_sigterm_stops_after_the_checkpoint_and_the_run_resumes(catalog, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RunInterrupted, match=r"interrupted after epoch 2 of episode 0.*esper run --resume") as info:
        _run(catalog, out)
    assert info.value.exit_code == 143
    assert [p.name for p in list_checkpoints(out)][-1] == "ep0000-epoch00002.pt"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler is removed with the run"
    summary = _run(catalog, out, resume=True)
    assert summary["epochs"] == 6 and (out / "summary.json").is_file()


def test_resume_with_a_truncated_events_file_is_refused(catalog, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        _run(catalog, out)
    events = out / "events.jsonl"
    lines = events.read_bytes().splitlines(keepends=True)
    first_epoch = next(i for i, line in enumerate(lines) if b'"kind": "epoch"' in line)
    kept = b"".join(lines[: first_epoch + 1])  # only epoch 1's record survives
    events.write_bytes(kept)
    with pytest.raises(CheckpointError, match=r"events.jsonl' is shorter than its checkpoint recorded .*: the events "
                                              r"after epoch 1 of episode 0 up to epoch 2 of episode 0 "
                                              r"were lost") as info:
        _run(catalog, out, resume=True)
    assert "\n" not in str(info.value)
    assert events.read_bytes() == kept, "nothing appended, no NUL padding"


def test_a_new_run_refuses_a_directory_written_between_its_check_and_its_lock(tmp_path):
    out = create_run_dir(tmp_path / "run")
    (out / "events.jsonl").write_text("{}\n")  # another run got there first
    with pytest.raises(RunDirBusy, match="was written to by another process"), own_run_dir(out, resume=False):
        pass
    assert (out / "events.jsonl").read_text() == "{}\n"


def _lock_is_free(run_dir) -> bool:
    import fcntl

    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _child_outlives(done: int) -> None:
    os.write(done, b"x")
    signal.pause()


@pytest.mark.parametrize("start", ["os.fork", "multiprocessing"])
def test_a_forked_child_does_not_keep_the_run_directory_in_use(tmp_path, start):
    """The baseline process and environment workers are forks of the run: once the run lets go
    of its lock (or dies), the directory is free, though the child lives on."""
    import multiprocessing

    run_dir = create_run_dir(tmp_path / "run")
    lock = RunDirLock.acquire(run_dir)
    ready, done = os.pipe()
    if start == "os.fork":
        pid = os.fork()
        if pid == 0:
            _child_outlives(done)
            os._exit(0)
    else:
        process = multiprocessing.get_context("fork").Process(target=_child_outlives, args=(done,), daemon=True)
        process.start()
        pid = process.pid
    try:
        assert os.read(ready, 1) == b"x"
        assert not _lock_is_free(run_dir)  # the parent's lock still holds while the child runs
        lock.release()
        assert _lock_is_free(run_dir)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready)
        os.close(done)


# -- links: a run directory's writes never reach what a symbolic link in it points to -------------


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("link", [LOCK_FILE, "events.jsonl", "config.toml", "checkpoints",
                                  "checkpoints/ep0000-epoch00001.pt"])
def test_a_resume_through_a_link_in_the_run_directory_is_refused_and_its_target_untouched(catalog, tmp_path, link):
    other, run = tmp_path / "other", tmp_path / "run"
    for folder in (other, run):
        with pytest.raises(RunInterrupted):
            _run(catalog, folder)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious data\n")
    target = victim if link == LOCK_FILE else other / link
    (run / LOCK_FILE).unlink(missing_ok=True)
    entry = run / link
    if entry.is_dir():
        for p in entry.iterdir():
            p.unlink()
        entry.rmdir()
    else:
        entry.unlink(missing_ok=True)
    entry.symlink_to(target)
    before = _files(other), victim.read_bytes()
    with pytest.raises(ConfigError, match=rf"^run directory .*: '{link}' is a symbolic link \(to '{target}'\); "
                                          r"Esper writes, truncates and deletes"), own_run_dir(run, resume=True):
        pass
    assert (_files(other), victim.read_bytes()) == before


def test_the_lock_is_never_taken_through_a_link_made_after_the_check(tmp_path, monkeypatch):
    from esper_core.storage import rundir

    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious data\n")
    (run / LOCK_FILE).symlink_to(victim)
    monkeypatch.setattr(rundir, "refuse_links", lambda run_dir: None)  # the link appears after it
    with pytest.raises(ConfigError, match=r"'.esper.lock' is a symbolic link"):
        RunDirLock.acquire(run)
    assert victim.read_text() == "precious data\n"
    assert lock_holder(run) is None


@pytest.mark.parametrize(("name", "why"), [("a" * 300, r"file name too long \(a name of 300 bytes; at most 255\)"),
                                           ("a\0b", "it contains a NUL byte")])
def test_an_out_the_os_would_refuse_is_named(tmp_path, name, why):
    with pytest.raises(ConfigError, match=rf"^--out '.*' is not a usable path: {why}$"):
        first_missing(tmp_path / "new" / name)
