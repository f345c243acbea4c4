"""The run directory: creation without overwriting, and atomic writes of small files."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from esper_core.errors import ConfigError

CONFIG_FILE = "config.toml"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.pt"
CHECKPOINTS_DIR = "checkpoints"


def default_run_dir(task: str, policy: str, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{stamp}-{task}-{policy}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = root / f"{stamp}-{task}-{policy}-{n}"
    return candidate


def create_run_dir(path: Path) -> Path:
    """Create ``path`` for a new run; an existing non-empty directory is never reused."""
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"--out {str(path)!r} exists and is not a directory")
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


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file beside ``path``, synced and renamed over ``path``
    when the block ends; on any failure the temporary file is removed and ``path`` is untouched
    (a kill mid-write leaves the previous version intact)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename over it."""
    with atomic_file(path) as handle:
        handle.write(text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
