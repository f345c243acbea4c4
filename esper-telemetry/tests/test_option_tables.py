"""``[telemetry.<sink>]`` and ``[observers.gradient_health]`` tables are checked when a run is
resolved, whether or not the run enables the sink or observer: every component of this
distribution declares its options class (``SinkSpec.options`` / ``ObserverSpec.options``), so a
misspelt key in the table of a sink switched off is refused, not silently kept until the day the
sink is enabled. No run trains here: the checks need only ``resolve_run`` (and, once, the CLI up
to the point where it refuses the config)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from esper_core.config import RunConfig
from esper_core.errors import ConfigError
from esper_core.lazy import LazyCallable
from esper_core.setup.resolve import resolve_run
from esper_core.testing.distributions import run_esper
from esper_telemetry import plugin
from esper_telemetry.observer import ObserverOptions
from esper_telemetry.sinks.console import ConsoleOptions
from esper_telemetry.sinks.csv_metrics import CsvOptions
from esper_telemetry.sinks.sqlite import SqliteOptions
from esper_telemetry.sinks.tensorboard import TensorBoardOptions

#: the class each component's factory parses its table into
DECLARED = {
    "console": ConsoleOptions,
    "csv": CsvOptions,
    "sqlite": SqliteOptions,
    "tensorboard": TensorBoardOptions,
    "gradient_health": ObserverOptions,
}

#: (table, component, a misspelt key, the message naming it)
MISSPELT = [
    ("telemetry", "console", "strem", r"telemetry sink 'console': unknown option 'strem' \(did you mean 'stream'\?\)"),
    ("telemetry", "csv", "max_row", r"telemetry sink 'csv': unknown option 'max_row' \(did you mean 'max_rows'\?\)"),
    ("telemetry", "sqlite", "pth", r"telemetry sink 'sqlite': unknown option 'pth' \(did you mean 'path'\?\)"),
    ("telemetry", "tensorboard", "log_dir",
     r"telemetry sink 'tensorboard': unknown option 'log_dir' \(did you mean 'logdir'\?\)"),
    ("observers", "gradient_health", "profil",
     r"observer 'gradient_health': unknown option 'profil' \(did you mean 'profile'\?\)"),
]

#: (table, component, a known key with a bad value, the message naming it)
BAD_VALUE = [
    ("telemetry", "console", {"decisions": "some"},
     r"telemetry sink 'console' option 'decisions' = 'some' is invalid; expected one of 'actions', 'all', 'none'"),
    ("telemetry", "csv", {"max_rows": 0},
     r"telemetry sink 'csv' option 'max_rows' = 0 is invalid; expected an integer ≥ 1"),
    ("telemetry", "sqlite", {"path": ""}, r"telemetry sink 'sqlite' option 'path' = '' is invalid"),
    ("telemetry", "tensorboard", {"max_points": -1},
     r"telemetry sink 'tensorboard' option 'max_points' = -1 is invalid; expected an integer ≥ 1"),
    ("observers", "gradient_health", {"profile": "verbose"},
     r"observer 'gradient_health' option 'profile' = 'verbose' is invalid; expected one of 'minimal', "
     r"'standard', 'diagnostic'"),
    ("observers", "gradient_health", {"vanishing_threshold": 1.0, "exploding_threshold": 0.5},
     r"observer 'gradient_health': vanishing_threshold must be below exploding_threshold"),
]


def _config(table: str, name: str, options: dict, *, enabled: bool) -> RunConfig:
    run = {"task": "toy", "policy": "still", "telemetry": [], "observers": []}
    if enabled:
        run["telemetry" if table == "telemetry" else "observers"] = [name]
    return RunConfig.from_dict({"run": run, table: {name: options}})


def test_every_sink_and_observer_declares_the_options_its_factory_parses():
    specs = [*plugin.esper_register_telemetry_sinks(), *plugin.esper_register_observers()]
    assert {spec.name for spec in specs} == set(DECLARED)
    for spec in specs:
        # lazy, so that registering (every `esper` command) imports no sink module
        assert isinstance(spec.options, LazyCallable), spec.name
        assert spec.options.resolve() is DECLARED[spec.name], spec.name


def test_registering_imports_no_sink_or_observer_module():
    code = ("import sys\n"
            "import esper_telemetry.plugin as p\n"
            "p.esper_register_telemetry_sinks(); p.esper_register_observers()\n"
            "print(sorted(m for m in sys.modules if m.startswith(('esper_telemetry.sinks.', "
            "'esper_telemetry.observer', 'esper_telemetry.gradient_health', 'torch', 'tensorboard'))))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("enabled", [False, True], ids=["left-out", "enabled"])
@pytest.mark.parametrize(("table", "name", "key", "message"), MISSPELT, ids=[m[1] for m in MISSPELT])
def test_a_misspelt_key_is_refused_whether_or_not_the_run_enables_the_component(catalog, table, name, key,
                                                                                 message, enabled):
    with pytest.raises(ConfigError, match=message):
        resolve_run(_config(table, name, {key: 1}, enabled=enabled), catalog)


@pytest.mark.parametrize(("table", "name", "options", "message"), BAD_VALUE,
                         ids=[f"{b[1]}-{next(iter(b[2]))}" for b in BAD_VALUE])
def test_a_bad_value_in_the_table_of_a_component_left_out_is_refused(catalog, table, name, options, message):
    with pytest.raises(ConfigError, match=message):
        resolve_run(_config(table, name, options, enabled=False), catalog)


def test_good_tables_of_components_left_out_are_kept(catalog):
    config = RunConfig.from_dict({
        "run": {"task": "toy", "policy": "still", "telemetry": [], "observers": []},
        "telemetry": {"console": {"stream": "stdout", "rewards": True}, "csv": {"max_rows": 10},
                      "sqlite": {"path": "/tmp/shared.sqlite"}, "tensorboard": {"logdir": "tb"}},
        "observers": {"gradient_health": {"profile": "diagnostic", "max_layers": 4}},
    })
    resolved = resolve_run(config, catalog)
    assert resolved.sinks == () and resolved.observers == ()
    assert resolved.config.telemetry_options["csv"] == {"max_rows": 10}


def test_the_cli_refuses_a_misspelt_key_of_a_sink_the_run_leaves_out(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("[run]\ntelemetry = []\nobservers = []\n\n[telemetry.csv]\nmax_row = 5\n", encoding="utf-8")
    out = tmp_path / "out"
    # small, so that a regression costs seconds: the config is refused before anything trains
    result = run_esper(["run", "--config", str(config), "--task", "shapes", "--task-option", "train_size=200",
                        "--task-option", "val_size=100", "--no-compare-baseline", "--threads", "1",
                        "--epochs", "1", "--out", str(out)])
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: telemetry sink 'csv': unknown option 'max_row' (did you mean 'max_rows'?); allowed options: "
        "max_bytes, max_rows, path")
    assert "Traceback" not in result.stderr
    assert not out.exists()
