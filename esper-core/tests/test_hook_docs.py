"""Every hook is documented in docs/writing-plugins.md and has a test of its own.

"Documented" means the guide has a ``### `hook``` section giving the hook's signature exactly as
``esper_core/hookspecs.py`` declares it, and non-empty **Called:** and **Returns:** entries.

"A test of its own" means some test module (``test_*.py`` under a distribution's ``tests/``, the
cross-distribution ``tests/`` or an example's ``tests/``) *calls* the hook by name — a plugin
module's implementation (``plugin.esper_register_policies()``) or the plugin manager's hook
(``pm.hook.esper_add_commands(cli=...)``) — so that test checks what that hook returns or does.
Importing the name, mentioning it in a string or calling it from a helper module does not count.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

import esper_core.hookspecs
from esper_core.plugins.manager import new_plugin_manager

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "writing-plugins.md"
TEST_GLOBS = ("*/tests/**/test_*.py", "tests/**/test_*.py", "examples/*/tests/**/test_*.py")


def hook_names() -> list[str]:
    """Every hook the plugin manager knows (the hookspecs module, as registered)."""
    return sorted(name for name in vars(new_plugin_manager().hook) if name.startswith("esper_"))


def declared_signatures() -> dict[str, str]:
    """``name(params) -> return`` of every hookspec, from the source as written."""
    tree = ast.parse(Path(esper_core.hookspecs.__file__).read_text(encoding="utf-8"))
    return {
        node.name: f"{node.name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}"
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.returns is not None
        and any(ast.unparse(d) == "hookspec" for d in node.decorator_list)
    }


def guide_sections(text: str) -> dict[str, str]:
    """``### `name``` heading → the section's text, up to the next heading."""
    parts = re.split(r"^(#{2,3} .*)$", text, flags=re.MULTILINE)
    sections = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        match = re.fullmatch(r"### `(esper_\w+)`", heading.strip())
        if match:
            sections[match.group(1)] = body
    return sections


def undocumented(hooks: Iterable[str], signatures: dict[str, str], text: str) -> list[str]:
    """Why each hook in ``hooks`` is not properly documented in ``text`` (empty when all are)."""
    sections = guide_sections(text)
    problems = []
    for hook in hooks:
        body = sections.get(hook)
        if body is None:
            problems.append(f"{hook}: no '### `{hook}`' section")
            continue
        if f"**Signature:** `{signatures[hook]}`" not in body:
            problems.append(f"{hook}: signature `{signatures[hook]}` missing")
        for field in ("Called", "Returns"):
            entry = re.search(rf"\*\*{field}:\*\* *(\S.*)", body)
            if entry is None:
                problems.append(f"{hook}: no **{field}:** entry")
    return problems


def called_names(source: str) -> set[str]:
    """Names of every function called in ``source`` (``f(...)`` and ``x.f(...)``)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                names.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
    return names


def hooks_with_tests(hooks: Iterable[str], root: Path, exclude: Path | None = None) -> dict[str, list[str]]:
    """Hook → the test modules under ``root`` that call it."""
    found: dict[str, list[str]] = {hook: [] for hook in hooks}
    paths = sorted({p for pattern in TEST_GLOBS for p in root.glob(pattern)})
    for path in paths:
        if path == exclude or ".venv" in path.parts:
            continue
        calls = called_names(path.read_text(encoding="utf-8"))
        for hook in found:
            if hook in calls:
                found[hook].append(str(path.relative_to(root)))
    return found


# --------------------------------------------------------------------------------------------


def test_every_hookspec_is_a_registered_hook_with_a_declared_signature() -> None:
    assert hook_names() == sorted(declared_signatures())
    assert {"esper_register_blueprints", "esper_register_policies", "esper_add_commands"} <= set(hook_names())
    assert declared_signatures()["esper_add_commands"] == "esper_add_commands(cli: click.Group) -> None"


def test_the_guide_documents_every_hook_and_no_other() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert undocumented(hook_names(), declared_signatures(), text) == []
    assert sorted(guide_sections(text)) == hook_names(), "the guide documents a hook that does not exist"


def test_the_guide_covers_entry_points_testing_and_plugin_switches() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for needle in ("[project.entry-points.esper]", "hookimpl", "esper new-plugin", "esper_core.testing",
                   "BlueprintConformance", "PolicyConformance", "SinkConformance", "RewardTermConformance",
                   "ESPER_PLUGINS", "ESPER_DISABLE_PLUGIN_AUTOLOAD", "ESPER_STRICT_PLUGINS", "--strict-plugins",
                   "ESPER_TRACE_HOOKS", "examples/esper-example-plugin",
                   # Writing a task: every Task method, the host's contract and the scaffold.
                   "## Writing a task", "build_host()", "train_batches(epoch=N)", "val_batches()",
                   "test_batches()", "loss(output, target)", "correct(output, target)",
                   "correct_per_example(output, target)", "input_contract()", "class_names",
                   "injection_points", "segments", "TaskSpec` defaults", "esper new-plugin esper-my-data --task"):
        assert needle in text, needle


def test_the_documentation_check_catches_a_missing_or_stale_section() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    signatures = declared_signatures()
    hooks = ["esper_add_commands", "esper_register_gates", "esper_register_telemetry_sinks"]
    assert undocumented(hooks, signatures, text) == []
    without = text.replace("### `esper_register_gates`", "### gates")
    assert undocumented(hooks, signatures, without) == [
        "esper_register_gates: no '### `esper_register_gates`' section"]
    stale = text.replace("`esper_add_commands(cli: click.Group) -> None`", "`esper_add_commands(cli) -> None`")
    assert undocumented(hooks, signatures, stale) == [
        "esper_add_commands: signature `esper_add_commands(cli: click.Group) -> None` missing"]
    no_returns = text.replace("- **Returns:** sinks.", "- sinks.")
    assert undocumented(hooks, signatures, no_returns) == [
        "esper_register_telemetry_sinks: no **Returns:** entry"]


def test_every_hook_has_a_test_that_calls_it() -> None:
    found = hooks_with_tests(hook_names(), REPO, exclude=Path(__file__).resolve())
    assert {hook: files for hook, files in found.items() if not files} == {}


def test_the_test_check_counts_calls_only_in_test_modules(tmp_path: Path) -> None:
    tests = tmp_path / "esper-thing" / "tests"
    tests.mkdir(parents=True)
    (tests / "test_mentions.py").write_text(
        "from thing.plugin import esper_register_gates\n"
        "def test_named():\n    assert 'esper_register_policies' and esper_register_gates\n")
    (tests / "helpers.py").write_text("def build(p):\n    return p.esper_register_policies()\n")
    (tests / "test_calls.py").write_text("def test_it(plugin):\n    assert plugin.esper_register_blueprints() == []\n")
    nested = tmp_path / "examples" / "esper-x" / "tests"
    nested.mkdir(parents=True)
    (nested / "test_commands.py").write_text("def test_it(pm, cli):\n    pm.hook.esper_add_commands(cli=cli)\n")
    hooks = ["esper_register_blueprints", "esper_register_gates", "esper_register_policies", "esper_add_commands"]
    assert hooks_with_tests(hooks, tmp_path) == {
        "esper_register_blueprints": ["esper-thing/tests/test_calls.py"],
        "esper_register_gates": [],
        "esper_register_policies": [],
        "esper_add_commands": ["examples/esper-x/tests/test_commands.py"],
    }
