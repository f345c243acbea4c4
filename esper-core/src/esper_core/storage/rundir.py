"""The run directory: creation without overwriting, one owning process, and atomic writes of
small files.

Ownership: the process that runs in a directory (a new run or a ``--resume``) holds an
exclusive ``fcntl`` lock on ``RUN_DIR/.esper.lock`` for as long as it runs, with its pid written
in the file. A second process is refused with the holder's pid. The kernel drops the lock when
its holder exits, however it exits (even SIGKILL), so a killed run never needs a manual unlock;
the pid left in the file is then only a stale note, overwritten by the next holder.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from esper_core.errors import ConfigError
from esper_core.files import FILE_MODE, check_usable_path, check_writable_file
from esper_core.telemetry.jsonl import EVENTS_FILE

CONFIG_FILE = "config.toml"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.pt"
CHECKPOINTS_DIR = "checkpoints"
LOCK_FILE = ".esper.lock"
#: written beside ``checkpoints/`` with the run's first checkpoint, so a resume can tell a run that
#: checkpointed (and lost its checkpoints) from one stopped before its first, whatever sinks it had
CHECKPOINTED_FILE = ".esper.checkpointed"


class RunDirBusy(ConfigError):
    """Another live process holds the run directory's lock."""


def default_run_dir(task: str, policy: str, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{stamp}-{task}-{policy}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = root / f"{stamp}-{task}-{policy}-{n}"
    return candidate


def create_run_dir(path: Path) -> Path:
    """Create ``path`` for a new run; an existing non-empty directory is never reused, and a
    run is never put inside another run's (or a dataset's) directory."""
    outer = enclosing_run_dir(path)
    if outer is not None:
        raise ConfigError(f"--out {str(path)!r} is inside the run or dataset directory {str(outer)!r}; "
                          "choose a directory outside it")
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"--out {str(path)!r} exists and is not a directory")
        holder = lock_holder(path)
        if holder is not None:
            raise RunDirBusy(f"--out {str(path)!r} is in use by another Esper process (pid {holder}); "
                             "choose another directory")
        if any(path.iterdir()):
            raise ConfigError(
                f"--out {str(path)!r} already exists and is not empty; choose another directory "
                "(runs are never overwritten)"
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {str(path)!r} is not writable: {exc.strerror or exc}") from None
    return path


DATASET_FILE = "dataset.json"
EPISODES_DIR = "episodes"


def is_run_or_dataset_dir(folder: Path) -> bool:
    """Whether ``folder`` is an Esper run directory or an ``esper collect`` dataset: it holds the
    lock file a run or a recording keeps, or a run's config beside its checkpoints or summary, or
    a dataset's metadata beside its episodes. A ``config.toml`` alone does not count: a project
    folder often holds the one passed to ``--config``, with its runs below it."""
    if (folder / LOCK_FILE).is_file():
        return True
    if (folder / CONFIG_FILE).is_file() and ((folder / SUMMARY_FILE).is_file() or (folder / CHECKPOINTS_DIR).is_dir()):
        return True
    return (folder / DATASET_FILE).is_file() and (folder / EPISODES_DIR).is_dir()


def is_resumable_run_dir(folder: Path) -> bool:
    """Whether ``folder`` is a run directory ``--resume`` may continue: its ``config.toml``
    beside a file only a run writes (the lock every run holds while it runs and leaves behind,
    its checkpoints or their marker, its summary, its events), and not an ``esper collect``
    dataset. A folder holding only a ``config.toml`` is a project folder, not a run."""
    if not (folder / CONFIG_FILE).is_file() or (folder / DATASET_FILE).is_file():
        return False
    return any((folder / name).exists()
               for name in (LOCK_FILE, CHECKPOINTS_DIR, CHECKPOINTED_FILE, SUMMARY_FILE, EVENTS_FILE))


def enclosing_run_dir(path: Path) -> Path | None:
    """The nearest run (or dataset) directory holding ``path``, or None."""
    for folder in path.resolve().parents:
        if is_run_or_dataset_dir(folder):
            return folder
    return None


def check_output_file(path: Path, *, flag: str = "--out") -> None:
    """Before the work, for a file the CLI will write (``esper evaluate``, ``discover``; export
    checks its file and contract itself): its folder accepts files, and it replaces no file of a run or dataset
    directory (:func:`refuse_run_files`)."""
    check_writable_file(path, flag=flag)
    refuse_run_files(path, flag=flag)


def refuse_run_files(path: Path, *, flag: str = "--out", replaceable: tuple[Path, ...] = ()) -> None:
    """Refuse an output file that would replace a file of a run or dataset directory, or go
    under one's ``checkpoints/`` or ``episodes/`` (where a stray file would be read back as a
    checkpoint or a shard). Inside a run directory an output may add new files, and replace an
    earlier export (a file with its ``FILE.json`` contract beside it) or one of ``replaceable``.
    """
    run_dir = enclosing_run_dir(path)
    if run_dir is None:
        return
    resolved = path.resolve()
    inner = resolved.relative_to(run_dir).parts
    if len(inner) > 1 and inner[0] in (CHECKPOINTS_DIR, EPISODES_DIR):
        raise ConfigError(f"{flag} {str(path)!r} is inside {str(run_dir / inner[0])!r}, which Esper reads "
                          "back; choose a file outside it")
    if not resolved.exists() or resolved in {p.resolve() for p in replaceable}:
        return
    earlier_export = (resolved.with_name(resolved.name + ".json").is_file()
                      or (resolved.suffix == ".json" and resolved.with_suffix("").is_file()))
    if earlier_export and resolved.name not in (CONFIG_FILE, SUMMARY_FILE, MODEL_FILE, LOCK_FILE):
        return
    raise ConfigError(f"{flag} {str(path)!r} would replace {resolved.name!r} of the run or dataset directory "
                      f"{str(run_dir)!r}; choose a new file name (what a run wrote is never overwritten)")


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def lock_holder(run_dir: Path) -> int | None:
    """The pid of the live process holding ``run_dir``'s lock (-1 when its pid is unreadable),
    or None when nobody holds it."""
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        pid = _read_pid(path)
        return -1 if pid is None else pid
    finally:
        os.close(fd)  # closing drops the probe's shared lock too
    return None


#: The run-directory locks this process holds (see :func:`_drop_inherited_locks`).
_HELD: set[RunDirLock] = set()


def _drop_inherited_locks() -> None:
    """Run in every child forked from this process (the baseline process, environment
    workers, anything a plugin forks): close its copies of the held locks' descriptors. An
    flock belongs to the open file, shared by every copy, so a child still holding one would
    keep the run "in use" after the process that took the lock died, and a ``--resume`` would
    be refused until the child exits. Closing a copy leaves the parent's lock in force."""
    for lock in list(_HELD):
        if lock._fd is not None:
            with suppress(OSError):
                os.close(lock._fd)
            lock._fd = None
    _HELD.clear()


if hasattr(os, "register_at_fork"):  # every POSIX platform Esper runs on
    os.register_at_fork(after_in_child=_drop_inherited_locks)


class RunDirLock:
    """The exclusive lock of one run directory (see the module docstring)."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir = run_dir
        self._fd: int | None = fd
        _HELD.add(self)

    @classmethod
    def acquire(cls, run_dir: Path) -> RunDirLock:
        """Take the lock or raise :class:`RunDirBusy` naming the holder's pid; a directory
        holding a symbolic link where Esper writes is refused first (:func:`refuse_links`)."""
        refuse_links(run_dir)
        path = run_dir / LOCK_FILE
        try:
            # O_NOFOLLOW: a link put in place after the check still cannot redirect the pid write
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ConfigError(_linked_message(run_dir, path)) from None
            raise ConfigError(f"cannot lock run directory {str(run_dir)!r}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            pid = _read_pid(path)
            who = f"pid {pid}" if pid is not None else "a process whose pid is unreadable"
            raise RunDirBusy(f"run directory {str(run_dir)!r} is in use by another Esper process ({who}); "
                             "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        return cls(run_dir, fd)

    def release(self) -> None:
        """Drop the lock (idempotent); the file stays, so no other process can be left holding
        a lock on an unlinked file while a third creates a new one."""
        _HELD.discard(self)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


#: The folders of a run or dataset directory whose files Esper deletes and replaces as it runs.
_WRITTEN_FOLDERS = (CHECKPOINTS_DIR, EPISODES_DIR)


def _linked_message(run_dir: Path, link: Path) -> str:
    try:
        target = f" (to {os.readlink(link)!r})"
    except OSError:
        target = ""
    return (f"run directory {str(run_dir)!r}: {str(link.relative_to(run_dir))!r} is a symbolic link{target}; "
            "Esper writes, truncates and deletes the files of a directory it runs in, which would change "
            "what the link points to: put the file or folder itself there")


def refuse_links(run_dir: Path) -> None:
    """Refuse a run or dataset directory holding a symbolic link among its entries or in its
    ``checkpoints/`` or ``episodes/``. Esper writes there through the names it gave (the lock's
    pid, appended events, old checkpoints deleted), so a link would carry those writes to its
    target: another run's checkpoints deleted by this run's, any file the link names truncated."""
    entries = list(run_dir.iterdir()) if run_dir.is_dir() else []
    for folder in _WRITTEN_FOLDERS:
        inner = run_dir / folder
        if inner.is_dir() and not inner.is_symlink():
            entries.extend(inner.iterdir())
    for entry in sorted(entries):
        if entry.is_symlink():
            raise ConfigError(_linked_message(run_dir, entry))


def _has_checkpoint(run_dir: Path) -> bool:
    folder = run_dir / CHECKPOINTS_DIR
    return folder.is_dir() and any(folder.iterdir())


def first_missing(path: Path) -> Path | None:
    """The outermost directory of ``path`` that does not exist yet (None if ``path`` exists):
    what creating ``path`` creates, and what :func:`own_run_dir` removes again on failure."""
    check_usable_path(path, label="--out")  # else exists() raises on a NUL byte or an over-long name
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


@contextmanager
def own_run_dir(run_dir: Path, *, resume: bool, created: Path | None = None) -> Iterator[RunDirLock]:
    """Hold ``run_dir``'s lock while the block runs. A new run that fails before writing its
    first checkpoint leaves ``--out`` as it was found (its files removed, and the directories
    from ``created`` down, which this command made), so the same command can be retried; once a
    checkpoint exists everything is kept, for ``--resume``."""
    lock = RunDirLock.acquire(run_dir)
    if not resume and any(p.name != LOCK_FILE for p in run_dir.iterdir()):
        # Another process wrote here between create_run_dir's check and this lock.
        lock.release()
        raise RunDirBusy(f"--out {str(run_dir)!r} was written to by another process while this run started; "
                         "choose another directory")
    try:
        yield lock
    except BaseException:
        if not resume and not _has_checkpoint(run_dir):
            _restore(run_dir, lock, created)
        raise
    finally:
        lock.release()


def _restore(run_dir: Path, lock: RunDirLock, created: Path | None) -> None:
    for entry in run_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    lock.release()
    (run_dir / LOCK_FILE).unlink(missing_ok=True)
    if created is None:
        return
    for folder in (run_dir, *run_dir.parents):
        try:
            folder.rmdir()
        except OSError:  # not empty: something else lives there
            return
        if folder == created:
            return
