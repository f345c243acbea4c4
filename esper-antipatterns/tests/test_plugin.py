"""Installing is extending: the plugin is torch-free at import and shows up in the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper_antipatterns import plugin
from esper_antipatterns.cli import antipatterns_command
from esper_antipatterns.curriculum import curriculum
from esper_antipatterns.detectors import DetectorConfig
from esper_core.config import RunConfig
from esper_core.contracts.specs import PolicySpec
from esper_core.errors import ConfigError
from esper_core.markers import hookimpl
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.testing import toy

ESPER = Path(sys.executable).with_name("esper")
NAMES = {"correlated_noise", "asymmetric_bottleneck", "momentum_dampener", "sigmoid_sandwich",
         "gain_amplifier", "deep_linear_stack", "expensive_identity", "redundant_ensemble",
         "kaiming_mismatch", "division_by_feature"}


def test_plugin_import_and_registration_do_not_import_torch() -> None:
    code = ("import sys, esper_antipatterns.plugin as p, esper_antipatterns.detectors, "
            "esper_antipatterns.curriculum, esper_antipatterns.cli\n"
            "specs = p.esper_register_blueprints(); terms = p.esper_register_reward_terms()\n"
            "assert [s.param_estimate(16) for s in specs]\n"
            "print(len(specs), len(terms), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["20", "5", "False"]


def _esper(*args: str, plugins: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPER_")}
    if plugins is not None:
        env["ESPER_PLUGINS"] = plugins
    return subprocess.run([str(ESPER), *args], capture_output=True, text=True, env=env, timeout=120)


def _cnn_rows(result: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    assert result.returncode == 0, result.stderr
    return {r["name"]: r for r in json.loads(result.stdout)["blueprints"] if r["topology"] == "cnn"}


@pytest.mark.skipif(not ESPER.exists(), reason="the esper console script is not installed")
def test_installed_antipatterns_appear_in_the_catalog_and_vanish_without_the_plugin() -> None:
    rows = _cnn_rows(_esper("blueprints", "--json", "--width", "16"))
    assert set(rows) >= NAMES
    for name in NAMES:
        assert rows[name]["antipattern"] is True
        assert rows[name]["distribution"] == "esper-antipatterns"
    assert rows["gain_amplifier"]["index"] == 28 and rows["gain_amplifier"]["params"] == 17
    listing = json.loads(_esper("blueprints", "--json", "--width", "64").stdout)["blueprints"]
    transformer = {r["name"]: r for r in listing if r["topology"] == "transformer" and r["antipattern"]}
    assert set(transformer) == NAMES
    assert {r["distribution"] for r in transformer.values()} == {"esper-antipatterns"}
    assert transformer["kaiming_mismatch"]["index"] == 32 and transformer["kaiming_mismatch"]["params"] == 64 * 64 + 128
    # Without the transformer plugin its forms are still declared; nothing breaks.
    cnn_only = _esper("blueprints", "--json", plugins="cnn,antipatterns")
    assert cnn_only.returncode == 0, cnn_only.stderr
    without = _esper("blueprints", "--json", plugins="cnn,policies")
    assert without.returncode == 0, without.stderr
    assert not NAMES & {r["name"] for r in json.loads(without.stdout)["blueprints"]}


@pytest.mark.skipif(not ESPER.exists(), reason="the esper console script is not installed")
def test_esper_antipatterns_subcommand() -> None:
    result = _esper("antipatterns", "--stage", "1", "--names")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "division_by_feature,kaiming_mismatch"


def test_cli_listing_json_and_errors() -> None:
    runner = CliRunner()
    table = runner.invoke(antipatterns_command, [])
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["stage", "index", "name"]
    # The same header rule as every other table (esper_core.presentation.table.format_table).
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert "measured" in lines[0].split()
    assert [line.split()[2] for line in lines[2:12]] == curriculum()
    assert "cnn forms. signature: what real runs measurably show" in table.output
    data = json.loads(runner.invoke(antipatterns_command, ["--category", "deceptive", "--json"]).output)
    # The measured signature, not seed 000's design: redundant_ensemble shows none in real runs.
    assert [(r["name"], r["topology"], r["signature"], r["penalty"]) for r in data["antipatterns"]] == [
        ("expensive_identity", "cnn", "cost_without_benefit", -1.0),
        ("redundant_ensemble", "cnn", "none", None)]
    assert data["antipatterns"][1]["measured"] == "nothing in 3/3 seeds"
    assert data["antipatterns"][0]["note"] == "" and "invisible" in data["antipatterns"][1]["note"]
    transformer = json.loads(runner.invoke(
        antipatterns_command, ["--topology", "transformer", "--category", "deceptive", "--json"]).output)
    assert [(r["topology"], r["signature"]) for r in transformer["antipatterns"]] == [
        ("transformer", "cost_without_benefit"), ("transformer", "cost_without_benefit")]
    assert runner.invoke(antipatterns_command, ["--topology", "rnn"]).exit_code == 2
    both = runner.invoke(antipatterns_command, ["--category", "subtle", "--stage", "2"])
    assert both.exit_code == 2 and "not both" in both.output
    assert runner.invoke(antipatterns_command, ["--stage", "7"]).exit_code == 2


def test_the_observer_declares_its_options_so_a_switched_off_table_is_checked() -> None:
    # Esper checks [observers.failure_signatures] when a run is resolved, also in a run that
    # leaves the observer out: a misspelt key is refused, not kept until the observer is enabled.
    (spec,) = plugin.esper_register_observers()
    assert spec.options.resolve() is DetectorConfig
    class Policies:  # resolving a run needs a policy; none is built here
        @hookimpl
        def esper_register_policies(self) -> list[PolicySpec]:
            return [PolicySpec(name="still", factory=print, description="a policy never built here")]

    catalog = build_catalog(load_plugins(PluginSettings(autoload=False),
                                         extra=[("toy", toy), ("p", Policies()), ("antipatterns", plugin)]))
    run = {"task": "toy", "policy": "still", "observers": []}
    with pytest.raises(ConfigError, match="observer 'failure_signatures': unknown option"):
        resolve_run(RunConfig.from_dict({"run": run, "observers": {"failure_signatures": {"not_a_key": 1}}}), catalog)
