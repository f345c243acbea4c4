"""``esper --help`` without importing the commands: core's from a table, the plugins' from a cache."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from esper_core.cache import cache_dir
from esper_core.cli.lazy_group import CACHE_FILE, first_paragraph
from esper_core.cli.main import CORE_COMMANDS

# Prints --help, then which of Esper's heavier modules the listing imported.
PROBE = (
    "import sys\n"
    "from esper_core.cli.main import main\n"
    "sys.argv = ['esper', *sys.argv[1:]]\n"
    "try:\n"
    "    main()\n"
    "except SystemExit:\n"
    "    pass\n"
    "heavy = sorted(m for m in sys.modules if m in {'esper_core.contracts', 'esper_core.cli.run_cmd',\n"
    "               'esper_telemetry.plugin', 'esper_policies.plugin', 'esper_core.plugins.registry'})\n"
    "print('IMPORTED', ','.join(heavy), file=sys.stderr)\n"
)


def _esper(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def _imported(result: subprocess.CompletedProcess[str]) -> set[str]:
    line = next(line for line in result.stderr.splitlines() if line.startswith("IMPORTED"))
    return set(filter(None, line.removeprefix("IMPORTED").strip().split(",")))


@pytest.mark.parametrize("name", sorted(CORE_COMMANDS))
def test_the_core_table_matches_each_command(name):
    path, text = CORE_COMMANDS[name]
    module, _, attribute = path.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert command.name == name
    assert text == first_paragraph(command), "update CORE_COMMANDS in esper_core/cli/main.py"


def test_a_warm_help_imports_no_command_and_no_plugin():
    cold = _esper("--help")
    assert cold.returncode == 0, cold.stderr
    assert (cache_dir() / CACHE_FILE).exists()
    warm = _esper("--help")
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == cold.stdout
    assert _imported(warm) == set()
    # The plugins' commands are listed all the same, with their help.
    assert "report" in warm.stdout and "runs" in warm.stdout and "collect" in warm.stdout
    assert "run " in warm.stdout and "Run episodes" in warm.stdout


def test_a_plugin_command_runs_from_a_warm_listing():
    _esper("--help")
    result = _esper("report", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: esper report" in result.stdout


def test_other_plugin_settings_do_not_reuse_the_listing():
    _esper("--help")
    only_core = _esper("--help", env={"ESPER_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert only_core.returncode == 0
    assert "report" not in only_core.stdout and "run " in only_core.stdout


def test_a_damaged_cache_is_said_and_ignored():
    _esper("--help")
    path = cache_dir() / CACHE_FILE
    path.write_text("{not json")
    result = _esper("--help")
    assert result.returncode == 0
    assert f"ignoring the plugin command cache {str(path)!r}" in result.stderr
    assert "report" in result.stdout
    assert json.loads(path.read_text())["format"] == "esper-plugin-commands"  # rewritten


def test_a_cache_of_the_wrong_shape_is_refused():
    _esper("--help")
    path = cache_dir() / CACHE_FILE
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "commands": {"report": 3}}))
    result = _esper("--help")
    assert "'commands' must map command names to help text" in result.stderr
    assert "report" in result.stdout


@pytest.mark.parametrize(("commands", "why"), [
    ({"evil\u001b[2J": "x"}, "is not a command name"),
    ({"report": "line one\nline two \u001b[31mred"}, "the help of command 'report' is not one line of text"),
    ({f"c{i}": "x" for i in range(1000)}, "commands, more than 256"),
])
def test_a_listing_no_esper_writes_is_refused(commands, why):
    _esper("--help")
    path = cache_dir() / CACHE_FILE
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "commands": {**data["commands"], **commands}}))
    result = _esper("--help")
    assert result.returncode == 0
    assert f"ignoring the plugin command cache {str(path)!r}: " in result.stderr and why in result.stderr
    assert "report" in result.stdout and "\u001b" not in result.stdout and "line two" not in result.stdout


def test_any_command_refreshes_the_listing():
    path = cache_dir() / CACHE_FILE
    assert not path.exists()
    result = _esper("plugins")
    assert result.returncode == 0, result.stderr
    commands = json.loads(path.read_text())["commands"]
    assert {"report", "runs", "collect", "antipatterns"} <= set(commands)
    assert not set(commands) & set(CORE_COMMANDS)
