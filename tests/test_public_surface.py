"""Every distribution in the repository, and the example plugin, reaches ``esper_core`` through its
public modules only (``esper_core.sdk.PUBLIC_MODULES``): the engine can then be reorganised
without breaking a plugin.

Every reference counts: ``import`` and ``from … import`` anywhere in a module (inside functions
too), ``from esper_core import <submodule>``, and strings naming a module — ``lazy("…")``
references and ``importlib.import_module("…")``.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import esper_core
from esper_core import sdk

REPO = Path(__file__).resolve().parents[1]
CORE = Path(esper_core.__file__).parent
SOURCES = sorted([*REPO.glob("esper-*/src"), *REPO.glob("examples/*/src")])
#: a string that names an esper_core module, optionally with ``:attribute`` (a lazy reference)
_MODULE_STRING = re.compile(r"^(esper_core(?:\.[A-Za-z_]\w*)*)(?::[\w.]+)?$")


def is_public(module: str) -> bool:
    for public in sdk.PUBLIC_MODULES:
        if public.endswith(".*"):
            package = public[:-2]
            if module == package or module.startswith(package + "."):
                return True
        elif module == public:
            return True
    return False


def _is_submodule(name: str) -> bool:
    return (CORE / f"{name}.py").is_file() or (CORE / name / "__init__.py").is_file()


def core_references(source: str) -> list[tuple[int, str]]:
    """(line, module) of every ``esper_core`` module the source refers to."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "esper_core":
                found += [(node.lineno, f"esper_core.{a.name}" if _is_submodule(a.name) else "esper_core")
                          for a in node.names]
            elif node.module.startswith("esper_core."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "esper_core"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _MODULE_STRING.match(node.value.strip())
            if match:
                found.append((node.lineno, match.group(1)))
    return sorted(found, key=lambda item: item[0])  # ast.walk goes breadth first


def private_references(path: Path) -> list[str]:
    return [f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{line}: {module}"
            for line, module in core_references(path.read_text(encoding="utf-8")) if not is_public(module)]


def _plugin_modules() -> list[Path]:
    return sorted(p for root in SOURCES for p in root.rglob("*.py") if "__pycache__" not in p.parts
                  and not p.is_relative_to(CORE.parent))


def test_the_scan_covers_every_distribution_and_the_example() -> None:
    names = {p.relative_to(REPO).parts[0] if p.parts[-3] != "examples" else p.parts[-2] for p in SOURCES}
    assert {"esper-policies", "esper-telemetry", "esper-antipatterns", "esper-blueprints-cnn",
            "esper-blueprints-transformer", "esper-example-plugin"} <= names
    assert len(_plugin_modules()) > 50


@pytest.mark.parametrize("path", _plugin_modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_plugins_import_only_public_modules(path: Path) -> None:
    private = private_references(path)
    assert not private, ("import these through esper_core.sdk (or add them there), not the engine's "
                         "modules:\n" + "\n".join(private))


def test_the_check_catches_private_imports_in_every_form(tmp_path: Path) -> None:
    bad = tmp_path / "bad_plugin.py"
    bad.write_text(
        "import esper_core.kasmina.optimizers\n"
        "from esper_core import tolaria, errors, hookimpl\n"
        "from esper_core.setup.tasks import episode_seed\n"
        "from esper_core.sdk import adam\n"
        "from esper_core.contracts.training import Environments\n"
        "from esper_core.testing import BlueprintConformance\n"
        "def later():\n"
        "    from esper_core.cli.app import AppState\n"
        "    return AppState\n"
        "FACTORY = lazy('esper_core.kasmina.model:MorphogeneticModel')\n"
        "RESOLVE = 'esper_core.setup.resolve'\n"
        "PROSE = 'esper_core is fine to mention in a sentence'\n",
        encoding="utf-8")
    found = [entry.split(": ", 1)[1] for entry in private_references(bad)]
    assert found == ["esper_core.kasmina.optimizers", "esper_core.tolaria", "esper_core.setup.tasks",
                     "esper_core.cli.app", "esper_core.kasmina.model", "esper_core.setup.resolve"]


def test_every_sdk_name_resolves_and_is_documented() -> None:
    docs = (REPO / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    names = [n for n in sdk.__all__ if n not in ("PUBLIC_MODULES", "DESCRIPTIONS")]
    assert set(names) == set(sdk.DESCRIPTIONS)
    assert all(getattr(sdk, n) is not None for n in names)
    undocumented = [n for n in names if f"`{n}`" not in docs]
    assert not undocumented, f"add to docs/writing-plugins.md, 'What a plugin may import': {undocumented}"
    assert all(f"`{m}`" in docs for m in sdk.PUBLIC_MODULES)
    assert set(names) <= set(dir(sdk))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        sdk.nonsense  # noqa: B018


def test_the_sdk_and_the_cli_help_stay_free_of_torch() -> None:
    code = ("import sys\n"
            "import esper_core.sdk as sdk\n"
            "light = [sdk.hookimpl, sdk.lazy, sdk.ConfigError, sdk.check_width, sdk.format_table,\n"
            "         sdk.deferred_logger, sdk.TrainingSessionProtocol, sdk.SeedView, sdk.write_json]\n"
            "assert 'torch' not in sys.modules, 'import esper_core.sdk imported torch'\n"
            "from esper_core.cli.main import main\n"
            "sys.argv = ['esper', '--help']\n"
            "try:\n"
            "    main()\n"
            "except SystemExit:\n"
            "    pass\n"
            "assert 'torch' not in sys.modules, 'esper --help imported torch'\n"
            "sdk.adam\n"
            "assert 'torch' in sys.modules\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_architect_is_a_blueprint_generator() -> None:
    # esper-policies' generator is typed by the contract, not by core's discovery code
    from esper_core.contracts.factories import BlueprintGenerator
    from esper_policies.architect.generator import Architect

    members = {n for n in vars(BlueprintGenerator) if not n.startswith("_")}
    assert members == {"propose", "observe"}
    assert all(callable(getattr(Architect, n, None)) for n in members)
