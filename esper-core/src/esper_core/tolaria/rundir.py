"""The run directory: creation without overwriting, and atomic writes of small files."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from esper_core.errors import ConfigError

CONFIG_FILE = "config.toml"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.pt"


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


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
