"""How the experiment scripts publish: torch-free, so the scripts that drive the CLI in
subprocesses (``learned_controllers.py``, ``iql_sweep.py``) share it with the in-process ones
(``growth_frontier.py``, ``blueprint_returns.py``) without loading the engine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def format_t(t: float | None, digits: int = 1) -> str:
    """A paired t statistic for a table; ``None`` (no spread) says so."""
    return "no spread" if t is None else f"{t:.{digits}f}"


def publish(lines: Sequence[str], out: Path | None, data: Any) -> None:
    """Print an experiment's Markdown; with ``out``, write it there and ``data`` beside it as JSON."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out is not None:
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps(data, indent=1))
