"""Helpers for testing plugins as installed distributions, without building wheels.

A directory holding ``module.py`` and a ``<dist>-<version>.dist-info`` folder with an
``entry_points.txt`` is enough for :mod:`importlib.metadata` to see an installed plugin, once
the directory is on ``sys.path`` (or ``PYTHONPATH`` for a subprocess).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path


def make_distribution(root: Path, *, dist: str, module: str, source: str, entry_name: str | None = None,
                      version: str = "1.0.0") -> Path:
    """Write ``module.py`` and a ``.dist-info`` declaring an ``esper`` entry point under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[esper]\n{entry_name or module} = {module}\n")
    return root


def run_esper(args: Sequence[str], *, extra_path: Path | None = None, env: Mapping[str, str] | None = None,
              cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``esper`` CLI in a fresh interpreter (ESPER_* variables cleared unless given)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ESPER_")}
    if extra_path is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in [str(extra_path), full_env.get("PYTHONPATH", "")] if p)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", "from esper_core.cli.main import main; main()", *args],
        capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd,
    )
