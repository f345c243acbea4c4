"""Assembling the files of a plugin distribution for the chosen component kinds.

:func:`render_plugin` returns every file as text, keyed by its path inside the distribution;
:func:`write_plugin` writes them into a directory that must be new or empty.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from pathlib import Path
from string import Template

from attrs import frozen

from esper_core.errors import ConfigError
from esper_core.scaffold import templates as t
from esper_core.scaffold.names import PluginNames


class Kind(enum.Enum):
    """A component kind ``esper new-plugin`` can write a sample of (the value is its flag)."""

    BLUEPRINT = "blueprint"
    POLICY = "policy"
    SINK = "sink"
    REWARD_TERM = "reward-term"
    TASK = "task"


#: What ``esper new-plugin`` writes when no kind is chosen. A task is left out: it brings a
#: dataset and a host, which most plugins (a block, a controller, a sink) have no use for.
DEFAULT_KINDS = (Kind.BLUEPRINT, Kind.POLICY, Kind.SINK, Kind.REWARD_TERM)


@frozen
class _KindParts:
    """What one kind adds to each generated file."""

    #: the ``esper_core.contracts`` names its hook uses
    contracts: tuple[str, ...]
    registry: str  # the Catalog registry attribute it lands in
    hook: Template
    module: str
    module_text: Template
    test: Template
    test_imports: tuple[str, ...]
    label: str


_PARTS: dict[Kind, _KindParts] = {
    Kind.BLUEPRINT: _KindParts(
        ("BlueprintSpec",), "blueprints", t.BLUEPRINT_HOOK, "blueprints", t.BLUEPRINT_MODULE, t.BLUEPRINT_TEST,
        ("from esper_core.testing import BlueprintConformance",
         "from $package.plugin import esper_register_blueprints"),
        "a blueprint"),
    Kind.POLICY: _KindParts(
        ("PolicySpec",), "policies", t.POLICY_HOOK, "policy", t.POLICY_MODULE, t.POLICY_TEST,
        ("import attrs", "import pytest", "from esper_core.contracts.protocols import Policy, PolicyContext",
         "from esper_core.errors import ConfigError", "from esper_core.testing import PolicyConformance",
         "from $package.plugin import esper_register_policies"),
        "a policy"),
    Kind.SINK: _KindParts(
        ("SinkSpec",), "sinks", t.SINK_HOOK, "sinks", t.SINK_MODULE, t.SINK_TEST,
        ("import json", "import pytest", "from pathlib import Path", "from typing import Any",
         "from esper_core.contracts.protocols import Sink", "from esper_core.errors import ConfigError",
         "from esper_core.testing import SinkConformance", "from $package.plugin import esper_register_telemetry_sinks",
         "from $package.sinks import EVENTS_FILE, ${Stem}SinkOptions"),
        "a telemetry sink"),
    Kind.REWARD_TERM: _KindParts(
        ("RewardTermSpec",), "reward_terms", t.REWARD_TERM_HOOK, "rewards", t.REWARD_TERM_MODULE, t.REWARD_TERM_TEST,
        ("from esper_core.testing import RewardTermConformance",
         "from $package.plugin import esper_register_reward_terms"),
        "a reward term"),
    Kind.TASK: _KindParts(
        ("RunDefaults", "TaskSpec", "TrainingSettings"), "tasks", t.TASK_HOOK, "task", t.TASK_MODULE, t.TASK_TEST,
        ("import pytest", "import torch", "from esper_core.contracts.protocols import SegmentedHost, Task",
         "from esper_core.errors import ConfigError", "from $package.plugin import esper_register_tasks"),
        "a task"),
}


def component_names(names: PluginNames, kind: Kind) -> str:
    """The name of the sample component of ``kind`` (a blueprint's is its ``cnn:`` key)."""
    return {
        Kind.BLUEPRINT: f"cnn:{names.blueprint}",
        Kind.POLICY: names.policy,
        Kind.SINK: names.sink,
        Kind.REWARD_TERM: names.reward_term,
        Kind.TASK: names.task,
    }[kind]


def registry_of(kind: Kind) -> str:
    """The :class:`~esper_core.plugins.registry.Catalog` attribute holding components of ``kind``."""
    return _PARTS[kind].registry


def _ordered(kinds: Collection[Kind]) -> list[Kind]:
    chosen = [k for k in Kind if k in kinds]
    if not chosen:
        raise ConfigError("choose at least one component kind")
    return chosen


def _usage(names: PluginNames, kinds: list[Kind]) -> str:
    task = names.task if Kind.TASK in kinds else "micro"
    args = [f"esper run --task {task} --epochs 4"]
    if Kind.BLUEPRINT in kinds:
        args.append(f"--blueprints {names.blueprint}")
    if Kind.POLICY in kinds:
        args.append(f"--policy {names.policy} --policy-option germinate_at=1")
    if Kind.SINK in kinds:
        args.append(f"--telemetry jsonl,{names.sink}")
    lines = [" ".join(args)]
    if Kind.SINK in kinds:
        lines.append(f"# the {names.sink} sink writes runs/<run>/{names.events_file}")
    if Kind.REWARD_TERM in kinds:
        lines.append(f"# {names.reward_term} is part of the shaped reward preset (weight 0.1)")
    return "\n".join(lines)


def _sorted_imports(lines: list[str]) -> str:
    """Merge and group import lines as isort does: standard library, third party, Esper, the plugin."""
    def group(module: str) -> int:
        top = module.split(".")[0]
        if top in {"json", "pathlib", "typing"}:
            return 0
        if top in {"attrs", "pytest", "torch"}:
            return 1
        return 2 if top == "esper_core" else 3

    plain: set[str] = set()
    froms: dict[str, set[str]] = {}
    for line in lines:
        words = line.split()
        if words[0] == "import":
            plain.add(words[1])
        else:
            froms.setdefault(words[1], set()).update(n.strip() for n in line.split(" import ", 1)[1].split(","))
    blocks: list[list[str]] = [[], [], [], []]
    for module in sorted(plain):
        blocks[group(module)].append(f"import {module}")
    for module in sorted(froms):
        line = f"from {module} import {', '.join(sorted(froms[module]))}"
        if len(line) > 100:
            line = f"from {module} import (\n" + "".join(f"    {n},\n" for n in sorted(froms[module])) + ")"
        blocks[group(module)].append(line)
    return "\n\n".join("\n".join(block) for block in blocks if block)


def render_plugin(names: PluginNames, kinds: Collection[Kind], *, core_version: str) -> dict[str, str]:
    """Every file of the distribution, keyed by relative path (POSIX separators)."""
    chosen = _ordered(kinds)
    parts = [_PARTS[k] for k in chosen]
    major, minor = core_version.split(".")[:2]
    dependencies = [f"esper-core~={major}.{minor}.0"]
    # A cnn blueprint needs torch and the cnn tasks to grow in; the cnn task needs torch and the
    # cnn blueprints to grow with.
    if Kind.BLUEPRINT in chosen or Kind.TASK in chosen:
        dependencies += ["torch>=2.4", f"esper-blueprints-cnn~={major}.{minor}.0"]
    kinds_text = ", ".join(p.label for p in parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1].label
    contributions = "".join(f'        "{p.registry}": ["{component_names(names, k)}"],\n'
                            for k, p in zip(chosen, parts, strict=True))
    values: Mapping[str, object] = {
        "distribution": names.distribution,
        "package": names.package,
        "short": names.short,
        "Stem": names.class_stem,
        "blueprint": names.blueprint,
        "policy": names.policy,
        "sink": names.sink,
        "reward_term": names.reward_term,
        "task": names.task,
        "events_file": names.events_file,
        "kinds_text": kinds_text,
        "dependencies": ", ".join(f'"{d}"' for d in dependencies),
        "spec_classes": "(\n" + "".join(f"    {c},\n" for c in sorted({c for p in parts for c in p.contracts})) + ")",
        "n_hooks": len(parts),
        "contributions": "{\n" + contributions + "    }",
        "component_rows": "\n".join(
            f"| {k.value} | `{component_names(names, k)}` | `{names.package}.{p.module}` |"
            for k, p in zip(chosen, parts, strict=True)),
        "usage": _usage(names, chosen),
    }
    src = f"src/{names.package}"
    files = {
        "pyproject.toml": t.PYPROJECT.substitute(values),
        "README.md": t.README.substitute(values),
        f"{src}/__init__.py": t.PACKAGE_INIT.substitute(values),
        f"{src}/py.typed": "",
        f"{src}/plugin.py": t.PLUGIN_HEADER.substitute(values) + "".join(p.hook.substitute(values) for p in parts),
        "tests/test_plugin.py": t.TEST_PLUGIN.substitute(values),
    }
    for part in parts:
        files[f"{src}/{part.module}.py"] = part.module_text.substitute(values)
    imports = [Template(line).substitute(values) for p in parts for line in p.test_imports]
    files["tests/test_conformance.py"] = (
        t.TEST_CONFORMANCE_HEADER.substitute(values) + "\n" + _sorted_imports(imports) + "\n"
        + "".join(p.test.substitute(values) for p in parts)
    )
    return files


def write_plugin(target: Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` under ``target``, which must not exist or be an empty directory."""
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise ConfigError(f"{target} already exists and is not empty; choose a new directory with --dir")
    written = []
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
