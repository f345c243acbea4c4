"""Compatibility: a plugin written against ``esper_core`` and ``esper_core.contracts`` before the
SDK existed keeps working. A frozen copy of that day's example plugin
(``tests/fixtures/frozen_example_plugin``) is made importable and registered through an ``esper``
entry point, like an installed distribution, then used: its conformance tests run, and
``esper run`` trains with its policy, blueprint and sink. Imports that moved may warn with a
DeprecationWarning; they must not fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FROZEN = Path(__file__).parent / "fixtures" / "frozen_example_plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The frozen plugin copied out and "installed": its src/ on the path with a dist-info that
    declares its entry point, exactly what importlib.metadata reads for a real installation."""
    root = tmp_path_factory.mktemp("frozen") / "esper-example-plugin"
    shutil.copytree(FROZEN, root, ignore=shutil.ignore_patterns("__pycache__"))
    info = root / "src" / "esper_example_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: esper-example-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[esper]\nexample = esper_example_plugin.plugin\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPER_")}
    env.update(PYTHONPATH=str(root / "src"), OMP_NUM_THREADS="1")
    return root, env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_the_frozen_plugin_registers_and_runs(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, env = installed
    esper = [sys.executable, "-W", "always::DeprecationWarning", "-c", "from esper_core.cli.main import main; main()"]
    plugins = _run([*esper, "plugins", "--json"], env, tmp_path)
    assert plugins.returncode == 0, plugins.stderr[-3000:]
    assert "esper_example_plugin.plugin" in plugins.stdout
    assert str(root / "src") in _run([sys.executable, "-c", "import esper_example_plugin as m; print(m.__file__)"],
                                     env, tmp_path).stdout
    out = tmp_path / "run"
    result = _run([*esper, "run", "--task", "micro", "--epochs", "2", "--no-compare-baseline", "--observers", "",
                   "--json", "--out", str(out), "--policy", "eager", "--max-seeds", "1",
                   "--blueprints", "pointwise_mlp", "--telemetry", "jsonl,timeline"], env, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["policy"] == "eager"
    assert [(s["blueprint"], s["germinated_epoch"]) for s in summary["seeds"]] == [("cnn:pointwise_mlp", 1)]
    assert (out / "timeline.tsv").read_text().count("\n") == (out / "events.jsonl").read_text().count("\n") > 0


def test_the_frozen_plugin_passes_its_conformance_tests(installed: tuple[Path, dict[str, str]]) -> None:
    # Its conformance tests use only the promised surface (esper_core.contracts, esper_core.testing);
    # its other tests also reach into esper_core.plugins, which was never promised.
    root, env = installed
    result = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "always::DeprecationWarning",
                   "tests/test_conformance.py"], env, root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
