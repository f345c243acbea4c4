"""``esper new-plugin``: names, generated files, refusals, and generated tests that pass."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper_core.cli.main import build_cli
from esper_core.errors import ConfigError
from esper_core.plugins.manager import PluginSettings
from esper_core.scaffold.names import PluginNames
from esper_core.scaffold.render import Kind, render_plugin


def new_plugin(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_cli(PluginSettings()), ["new-plugin", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_names_are_normalised_and_derived() -> None:
    names = PluginNames.from_distribution("Esper_My.Blocks")
    assert (names.distribution, names.package, names.short) == ("esper-my-blocks", "esper_my_blocks", "my_blocks")
    assert (names.class_stem, names.blueprint, names.reward_term) == ("MyBlocks", "my_blocks_residual",
                                                                      "my_blocks_accuracy_delta")
    plain = PluginNames.from_distribution("growth-tools")
    assert (plain.package, plain.short) == ("growth_tools", "growth_tools")


@pytest.mark.parametrize(("raw", "message"), [
    ("-bad", "not a valid distribution name"),
    ("my plugin", "not a valid distribution name"),
    ("esper-", "not a valid distribution name"),
    ("esper", "names no plugin"),
    ("3d-blocks", "not a Python identifier"),
    ("class", "'class' gives the import package 'class', which is a Python keyword and cannot be imported"),
    ("Import", "which is a Python keyword"),  # normalised to lower case: 'import'
    ("esper-3d", "must start with a letter"),
])
def test_bad_names_are_refused_with_the_reason(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PluginNames.from_distribution(raw)


def test_each_kind_alone_renders_parseable_files_with_only_its_hook() -> None:
    names = PluginNames.from_distribution("esper-solo")
    hooks = {Kind.BLUEPRINT: "esper_register_blueprints", Kind.POLICY: "esper_register_policies",
             Kind.SINK: "esper_register_telemetry_sinks", Kind.REWARD_TERM: "esper_register_reward_terms",
             Kind.TASK: "esper_register_tasks"}
    for kind, hook in hooks.items():
        files = render_plugin(names, [kind], core_version="0.1.0")
        for path, text in files.items():
            if path.endswith(".py"):
                ast.parse(text, filename=path)
        plugin = ast.parse(files["src/esper_solo/plugin.py"])
        defined = {n.name for n in plugin.body if isinstance(n, ast.FunctionDef) and n.name.startswith("esper_")}
        assert defined == {hook}, kind
        project = tomllib.loads(files["pyproject.toml"])["project"]
        assert project["entry-points"]["esper"] == {"solo": "esper_solo.plugin"}
        cnn = kind in (Kind.BLUEPRINT, Kind.TASK)
        blueprint_needs = ["torch>=2.4", "esper-blueprints-cnn~=0.1.0"] if cnn else []
        assert project["dependencies"] == ["esper-core~=0.1.0", *blueprint_needs]


def test_rendering_needs_a_kind() -> None:
    with pytest.raises(ConfigError, match="choose at least one component kind"):
        render_plugin(PluginNames.from_distribution("esper-empty"), [], core_version="0.1.0")


def test_cli_writes_the_chosen_kinds(tmp_path: Path) -> None:
    target = tmp_path / "plugin"
    code, output = new_plugin("esper-tidy-sinks", "--sink", "--reward-term", "--dir", str(target))
    assert code == 0, output
    assert "wrote esper-tidy-sinks (sink, reward-term)" in output
    written = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert written == ["README.md", "pyproject.toml", "src/esper_tidy_sinks/__init__.py",
                       "src/esper_tidy_sinks/plugin.py", "src/esper_tidy_sinks/py.typed",
                       "src/esper_tidy_sinks/rewards.py", "src/esper_tidy_sinks/sinks.py",
                       "tests/test_conformance.py", "tests/test_plugin.py"]
    readme = (target / "README.md").read_text()
    assert "| sink | `tidy_sinks` |" in readme and "--telemetry jsonl,tidy_sinks" in readme


def test_cli_defaults_to_every_kind_in_a_directory_named_after_the_distribution(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = new_plugin("esper-all-kinds")
    assert code == 0, output
    package = tmp_path / "esper-all-kinds" / "src" / "esper_all_kinds"
    # Every kind but the task: a task is opt-in (--task).
    assert "(blueprint, policy, sink, reward-term)" in output
    assert {p.name for p in package.glob("*.py")} == {"__init__.py", "plugin.py", "blueprints.py", "policy.py",
                                                      "sinks.py", "rewards.py"}


@pytest.mark.parametrize(("args", "message"), [
    (["esper-csv", "--sink"], "telemetry sink 'csv' is already provided by esper-telemetry"),
    (["esper-heuristic", "--policy"], "policy 'heuristic' is already provided by esper-policies"),
    (["esper-core"], "a module named 'esper_core' is already importable"),
    (["not a name"], "'not a name' is not a valid distribution name"),
])
def test_cli_refuses_clashing_or_invalid_names(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = new_plugin(*args, "--dir", str(tmp_path / "out"))
    assert code == 2
    assert len(output.strip().splitlines()) == 1 and output.startswith(f"Error: {message}"), output
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    code, output = new_plugin("esper-fresh", "--dir", str(tmp_path))
    assert code == 2 and "already exists and is not empty" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    file_target = tmp_path / "keep.txt"
    code, output = new_plugin("esper-fresh", "--dir", str(file_target))
    assert code == 2 and "exists and is not a directory" in output


LONG = "esper-" + "a" * 300


def test_a_name_too_long_for_a_file_name_is_refused_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"\(306 characters\) is too long for a distribution name; use at most 100"):
        PluginNames.from_distribution(LONG)
    assert PluginNames.from_distribution("esper-" + "a" * 94).package == "esper_" + "a" * 94  # 100: the limit
    for args in ([LONG], [LONG, "--dir", "short"]):  # the default ./NAME, and a short --dir
        code, output = new_plugin(*args)
        assert code == 2 and len(output.strip().splitlines()) == 1 and "too long" in output, output
        assert list(tmp_path.iterdir()) == []  # nothing written: a rerun is not refused for "short"
    code, output = new_plugin("esper-short", "--dir", "short")
    assert code == 0 and (tmp_path / "short" / "README.md").is_file()


@pytest.mark.parametrize("directory", ["", "   ", "a" * 300, f"x/{'a' * 300}/y"])
def test_a_dir_that_is_empty_or_holds_a_name_too_long_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, directory: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = new_plugin("esper-here", "--dir", directory)
    assert code == 2 and len(output.strip().splitlines()) == 1, output
    assert output.startswith("Error: --dir ") and ("expected a path" in output or "at most 255" in output), output
    assert list(tmp_path.iterdir()) == []


def _pytest_in(directory: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH cleared: the generated pyproject puts src/ on the path, as it will for its author.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESPER_", "PYTHONPATH", "COV_"))}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
                           "ignore::FutureWarning"], cwd=directory, capture_output=True, text=True, env=env,
                          timeout=300)


def test_generated_tests_pass_as_generated(tmp_path: Path) -> None:
    everything, sinks_only = tmp_path / "everything", tmp_path / "sinks"
    assert new_plugin("esper-gen-check", "--dir", str(everything))[0] == 0
    assert new_plugin("esper-gen-sinks", "--sink", "--dir", str(sinks_only))[0] == 0
    full = _pytest_in(everything)
    assert full.returncode == 0, full.stdout[-3000:] + full.stderr[-2000:]
    summary = full.stdout.strip().splitlines()[-1]
    # 7 blueprint, 3 + 3 + 1 policy, 3 + 1 sink (its declared options), 3 reward-term conformance
    # checks; 3 plugin checks.
    assert summary.startswith("24 passed") and "skipped" not in summary and "failed" not in summary, summary
    partial = _pytest_in(sinks_only)
    assert partial.returncode == 0, partial.stdout[-3000:] + partial.stderr[-2000:]
    assert partial.stdout.strip().splitlines()[-1].startswith("7 passed")


def test_task_scaffold_writes_a_cnn_task_whose_tests_pass(tmp_path: Path) -> None:
    target = tmp_path / "task"
    code, output = new_plugin("esper-gen-task", "--task", "--dir", str(target))
    assert code == 0, output
    assert "wrote esper-gen-task (task)" in output
    assert (target / "src/esper_gen_task/task.py").is_file()
    readme = (target / "README.md").read_text()
    assert "| task | `gen_task_stripes` |" in readme and "esper run --task gen_task_stripes" in readme
    result = _pytest_in(target)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # 6 task checks (reading its options among them); 3 plugin checks.
    assert result.stdout.strip().splitlines()[-1].startswith("9 passed"), result.stdout[-500:]
