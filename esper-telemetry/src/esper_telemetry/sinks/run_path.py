"""Where a sink writes: an option's path, absolute as given or relative to the run directory."""

from __future__ import annotations

from pathlib import Path

from esper_core.errors import ConfigError


def in_run_dir(value: str, run_dir: Path | None, *, owner: str, key: str) -> Path:
    """``value`` (``~`` expanded) when absolute, else inside ``run_dir``; a relative path with
    no run directory (``esper`` used as a library) is a :class:`ConfigError` naming ``key``."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    if run_dir is None:
        raise ConfigError(f"{owner} needs a run directory or an absolute {key!r} option")
    return Path(run_dir) / path
