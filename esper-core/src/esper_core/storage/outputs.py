"""Where a command or a telemetry sink may write: one rule for every user-named output.

* An output a command writes (``--out`` of ``evaluate``, ``export``, ``discover``, ``report``,
  ``collect``) never goes inside a run or dataset directory other than the one the command reads
  (:func:`check_outside_runs`), and one that already exists is refused unless ``--force`` is given
  (:func:`check_output`); what a run wrote is never replaced, ``--force`` or not.
* A telemetry sink's file outside its run's directory is never inside another run or dataset
  directory, nor a file that holds something already, unless the run is a ``--resume`` of the
  run that wrote it (:func:`check_sink_path`); inside its run's directory it never writes into
  a file the run itself keeps (``config.toml``, ``summary.json``, ``checkpoints/``...); and no
  two sinks of one run write one path (:func:`distinct_sink_paths`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from esper_core.errors import ConfigError
from esper_core.files import check_usable_path, check_writable_dir
from esper_core.storage.rundir import (
    CHECKPOINTED_FILE,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    DATASET_FILE,
    EPISODES_DIR,
    LOCK_FILE,
    MODEL_FILE,
    SUMMARY_FILE,
    check_output_file,
    enclosing_run_dir,
    is_run_or_dataset_dir,
)
from esper_core.telemetry.jsonl import JsonlSink

#: files at the top of a run (or dataset) directory that only Esper itself writes
_RUN_FILES = frozenset({CONFIG_FILE, SUMMARY_FILE, MODEL_FILE, LOCK_FILE, CHECKPOINTED_FILE, DATASET_FILE})
#: folders of a run (or dataset) directory whose every file Esper reads back
_READ_BACK_DIRS = frozenset({CHECKPOINTS_DIR, EPISODES_DIR})


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def check_outside_runs(path: Path, *, flag: str = "--out", reads: Path | None = None,
                       directory: bool = False) -> None:
    """Refuse an output ``path`` inside a run or dataset directory other than ``reads`` (the run
    the command reads, which may hold what is derived from it), or inside one's ``checkpoints/``
    or ``episodes/`` (which Esper reads back). With ``directory``, ``path`` itself being another
    run or dataset directory is refused too."""
    outer = path if directory and path.is_dir() and is_run_or_dataset_dir(path) else enclosing_run_dir(path)
    if outer is None:
        return
    if reads is None or not _same(outer, reads):
        raise ConfigError(f"{flag} {str(path)!r} is inside the run or dataset directory {str(outer)!r}; "
                          "choose a path outside it")
    inner = path.resolve().relative_to(outer.resolve()).parts
    if inner and inner[0] in _READ_BACK_DIRS:
        raise ConfigError(f"{flag} {str(path)!r} is inside {str(outer / inner[0])!r}, which Esper reads back; "
                          "choose a path outside it")


def check_output(path: Path, *, flag: str = "--out", force: bool = False, directory: bool = False,
                 reads: Path | None = None) -> None:
    """Before any work, for an output a user named with ``flag``: it can be written, it is not
    inside another run or dataset directory (:func:`check_outside_runs`), it replaces no file of
    a run, and it does not exist yet unless ``force`` (a directory: exists and is not empty).
    ``reads`` is the run directory the command reads, if any."""
    if directory:
        check_writable_dir(path, flag=flag)
    else:
        check_output_file(path, flag=flag)
    check_outside_runs(path, flag=flag, reads=reads, directory=directory)
    if force:
        return
    if directory:
        if path.is_dir() and any(path.iterdir()):
            raise ConfigError(f"{flag} {str(path)!r} exists and is not empty; choose another directory "
                              "or pass --force")
    elif path.exists() or path.is_symlink():
        raise ConfigError(f"{flag} {str(path)!r} exists; choose another file or pass --force")


def _resumed(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that ran before this process: a checkpoint (or the marker
    its first one leaves) or a summary. A new run has none of these when its sinks open."""
    checkpoints = run_dir / CHECKPOINTS_DIR
    return ((run_dir / CHECKPOINTED_FILE).exists() or (run_dir / SUMMARY_FILE).exists()
            or (checkpoints.is_dir() and any(checkpoints.iterdir())))


def _holds_data(path: Path) -> bool:
    """Whether writing at ``path`` could lose something: anything there but an empty regular
    file. (A sink opens its file when the run starts; when a later sink is refused, the file is
    left empty, and the corrected run must not be refused for it.)"""
    if path.is_symlink() or not path.exists():
        return path.is_symlink()
    return not path.is_file() or path.stat().st_size > 0


#: While a run opens its sinks (:func:`distinct_sink_paths`): each path a sink claimed, and whose.
_CLAIMED: ContextVar[dict[Path, str] | None] = ContextVar("esper_sink_paths", default=None)


@contextmanager
def distinct_sink_paths() -> Iterator[None]:
    """While a run opens its telemetry sinks: :func:`check_sink_path` refuses a path another of
    them already writes, or one inside it or holding it (two sinks on one file interleave their
    records and leave neither file readable)."""
    token = _CLAIMED.set({})
    try:
        yield
    finally:
        _CLAIMED.reset(token)


def _claim(path: Path, *, owner: str, where: str) -> None:
    claimed = _CLAIMED.get()
    if claimed is None:
        return
    resolved = path.resolve()
    for other, other_owner in claimed.items():
        if other == resolved or other in resolved.parents or resolved in other.parents:
            relation = "is the file" if other == resolved else "overlaps the path"
            raise ConfigError(f"{where} {relation} {other_owner} writes ({str(other)!r}); give each sink "
                              "its own file")
    claimed[resolved] = owner


def check_sink_path(path: Path, run_dir: Path | None, *, owner: str, key: str = "path",
                    shared: bool = False) -> Path:
    """Refuse, before the sink opens it, a file (or folder) a telemetry sink of the run in
    ``run_dir`` would write: inside ``run_dir``, one of the run's own files or its
    ``checkpoints/``; outside it, a path inside another run or dataset directory, or one that
    exists (other than an empty file) unless this run is a ``--resume`` of the run that wrote
    it; and anywhere, a path the OS refuses by its spelling (a NUL byte, an over-long name:
    :func:`~esper_core.files.check_usable_path`). ``shared`` sinks (a
    database several runs share, a folder each run adds its own files to) may use an existing
    path. Returns ``path``. With no ``run_dir`` (a sink used as a library) nothing is checked."""
    if run_dir is None:
        return path
    check_usable_path(path, label=f"{owner}: {key}")  # before resolve(), which a NUL byte makes raise
    resolved, own = path.resolve(), Path(run_dir).resolve()
    where = f"{owner}: {key} {str(path)!r}"
    if resolved == own or own in resolved.parents:
        inner = resolved.relative_to(own).parts
        if not inner or inner[0] in _READ_BACK_DIRS or (len(inner) == 1 and inner[0] in _RUN_FILES):
            name = inner[0] if inner else "directory"
            raise ConfigError(f"{where} would write into the run's own {name!r}; choose another file name")
        _claim(path, owner=owner, where=where)
        return path
    outer = enclosing_run_dir(path)
    if outer is not None:
        raise ConfigError(f"{where} is inside the run or dataset directory {str(outer)!r}; a run writes "
                          "only its own files: choose a path outside it")
    if is_run_or_dataset_dir(path):
        raise ConfigError(f"{where} is the run or dataset directory itself; choose a path outside it")
    if not shared and _holds_data(path) and not _resumed(run_dir):
        raise ConfigError(f"{where} already exists, and a run appends only to a file it wrote itself "
                          "(when continued with --resume); choose a new path or move the file away")
    _claim(path, owner=owner, where=where)
    return path


def open_jsonl_sink(*, run_dir: Path | None, options: Mapping[str, Any]) -> JsonlSink:
    """The built-in ``jsonl`` sink's factory: :meth:`JsonlSink.from_options`, its file checked
    by :func:`check_sink_path` before it is opened."""
    return JsonlSink.from_options(run_dir=run_dir, options=options, check_path=lambda path: check_sink_path(
        path, run_dir, owner="telemetry sink 'jsonl'"))
