"""Where Esper keeps what it can recompute: reused baselines, the plugin command listing.

``$ESPER_CACHE_DIR``, else ``$XDG_CACHE_HOME/esper``, else ``~/.cache/esper``. Everything in it
is read back like any other input (size-capped, parsed as data, checked field by field) and a
bad entry is reported and recomputed, never trusted; deleting the folder only costs time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("ESPER_CACHE_DIR"):
        return Path(env["ESPER_CACHE_DIR"])
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "esper"
    return Path.home() / ".cache" / "esper"
