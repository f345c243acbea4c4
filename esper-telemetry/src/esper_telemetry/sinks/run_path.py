"""Where a sink writes: an option's path, absolute as given or relative to the run directory."""

from __future__ import annotations

from pathlib import Path

from esper_core.errors import ConfigError
from esper_core.sdk import check_sink_path


def in_run_dir(value: str, run_dir: Path | None, *, owner: str, key: str) -> Path:
    """``value`` (``~`` expanded) when absolute, else inside ``run_dir``; a relative path with
    no run directory (``esper`` used as a library) is a :class:`ConfigError` naming ``key``."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    if run_dir is None:
        raise ConfigError(f"{owner} needs a run directory or an absolute {key!r} option")
    return Path(run_dir) / path


def sink_path(value: str, run_dir: Path | None, *, owner: str, key: str, shared: bool = False) -> Path:
    """:func:`in_run_dir`, refused before anything is opened where it would write into another
    run's files or over an existing file (``check_sink_path``; ``shared``: an existing path is
    the sink's to add to)."""
    return check_sink_path(in_run_dir(value, run_dir, owner=owner, key=key), run_dir, owner=owner, key=key,
                           shared=shared)
