from __future__ import annotations

import subprocess
import sys

import click
import pytest

from esper_core.contracts.protocols import Sink
from esper_core.errors import ConfigError
from esper_telemetry import plugin


def test_plugin_module_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys\n"
        "import esper_telemetry.plugin as p\n"
        "specs = p.esper_register_telemetry_sinks()\n"
        "observers = p.esper_register_observers()\n"
        "import click\n"
        "g = click.Group('esper')\n"
        "p.esper_add_commands(cli=g)\n"
        "heavy = sorted(m for m in ('torch', 'matplotlib', 'numpy') if m in sys.modules)\n"
        "print(','.join(heavy) or 'clean', sorted(g.commands))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "clean ['report', 'runs']"


def test_registered_sinks_build_and_validate_options(tmp_path):
    specs = {spec.name: spec for spec in plugin.esper_register_telemetry_sinks()}
    assert set(specs) == {"console", "csv", "sqlite", "tensorboard"}
    for name in ("console", "csv", "sqlite"):
        sink = specs[name].factory(run_dir=tmp_path, options={})
        assert isinstance(sink, Sink)
        sink.close()
        with pytest.raises(ConfigError, match=f"telemetry sink '{name}': unknown option 'nope'; allowed options: "):
            specs[name].factory(run_dir=tmp_path, options={"nope": 1})
    assert (tmp_path / "run.sqlite").exists() and (tmp_path / "metrics.csv").exists()


def test_commands_are_added_to_the_cli_group():
    group = click.Group("esper")
    plugin.esper_add_commands(cli=group)
    assert set(group.commands["runs"].commands) == {"list", "show", "compare"}
