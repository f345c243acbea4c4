"""The engine's layers (docs/architecture.md): a module imports only from its own layer or below.

Every ``esper_core`` import counts, including the ones inside functions that keep ``esper
--help`` free of torch: an import that runs late is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import esper_core

ROOT = Path(esper_core.__file__).parent

#: Bottom to top. A name is a top-level module or package of ``esper_core``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors", "wording", "markers", "lazy", "files", "log_config", "config", "contracts",
     "hookspecs", "blueprint_catalog", "options", "cache", "paired", "memory"),
    ("rewards", "telemetry", "scaffold"),
    ("builtin", "plugins"),
    ("kasmina", "discovery"),
    ("setup",),
    ("storage",),
    ("tolaria",),
    ("presentation",),
    # The SDK re-exports names from every layer (on first use), so it sits on top.
    ("cli", "testing", "sdk"),
)
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}


def _unit(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "esper_core":
                found += [(node.lineno, alias.name) for alias in node.names]
            elif node.module.startswith("esper_core."):
                found.append((node.lineno, node.module.split(".")[1]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("esper_core.")]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = sorted({_unit(p) for p in _modules()} - set(LAYER))
    assert not unplaced, f"add these to a layer in LAYERS and docs/architecture.md: {unplaced}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    here = _unit(path)
    upward = []
    for line, target in _imports(path):
        if target == "__version__":
            target = "__init__"
        if target in LAYER and LAYER[target] > LAYER[here]:
            upward.append(f"line {line}: {here} (layer {LAYER[here]}) imports {target} (layer {LAYER[target]})")
    assert not upward, "\n".join(upward)


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    # The checker itself must be able to fail: an engine module importing the CLI is caught.
    bad = tmp_path / "bad.py"
    bad.write_text("from esper_core.cli.app import AppState\n")
    targets = [target for _, target in _imports(bad)]
    assert targets == ["cli"] and LAYER["cli"] > LAYER["tolaria"]
