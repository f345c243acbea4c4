"""Training options are declared by the learned policies that take them (PolicySpec.
training_options): ``esper run`` offers each as a flag and refuses it for a policy that does not
declare it. Core declares none itself."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from engine_helpers import _policies_plugin

from esper_core.cli.app import AppState
from esper_core.cli.run_cmd import run_command
from esper_core.config import RunConfig
from esper_core.contracts import PolicySpec, TrainingOption
from esper_core.errors import ConfigError
from esper_core.markers import hookimpl
from esper_core.plugins import PluginSettings, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.setup.training_options import check_training_options, declared_training_options
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.tolaria.job import execute_run

ESPER_CORE_SRC = Path(__file__).resolve().parents[1] / "src" / "esper_core"


def _trainer(context):  # pragma: no cover - these tests stop before any training
    raise AssertionError("not trained in these tests")


def learners_plugin() -> types.ModuleType:
    """Two learned test policies: ``stepper`` (rounds, greedy, horizon) and ``replayer`` (rounds, replay)."""
    module = types.ModuleType("learner_policies")

    @hookimpl
    def esper_register_policies():
        rounds = TrainingOption(name="rounds", type=int, default=3, help="updates", extends_on_resume=True)
        return [
            PolicySpec(name="stepper", factory=lambda context: None, trainer=_trainer, description="test",
                       training_options=(rounds, TrainingOption(name="greedy", type=bool, help="act greedily"),
                                         TrainingOption(name="horizon", type=int, help="steps ahead"))),
            PolicySpec(name="replayer", factory=lambda context: None, trainer=_trainer, description="test",
                       training_options=(rounds, TrainingOption(name="replay", type=str, help="a folder"))),
        ]

    module.esper_register_policies = esper_register_policies
    return module


@pytest.fixture
def state():
    plugins = load_plugins(PluginSettings(autoload=False),
                           extra=[("toy", toy), ("scripted", _policies_plugin()), ("learners", learners_plugin())])
    return AppState(PluginSettings(autoload=False), _plugins=plugins)


def test_each_declared_option_is_listed_once_with_the_policies_that_declare_it(state):
    declared = declared_training_options(state.catalog)
    assert list(declared) == ["rounds", "greedy", "horizon", "replay"]
    assert declared["rounds"].policies == ("stepper", "replayer")
    assert declared["horizon"].option.flag == "--horizon"


def test_run_help_lists_the_declared_flags(state):
    result = CliRunner().invoke(run_command, ["--help"], obj=state)
    assert result.exit_code == 0, result.output
    assert "--rounds INTEGER" in result.output and "stepper, replayer: updates (default 3)." in result.output
    assert "--greedy / --no-greedy" in result.output and "--replay TEXT" in result.output


def test_without_a_learned_policy_installed_the_flags_do_not_exist(tmp_path):
    plugins = load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("scripted", _policies_plugin())])
    state = AppState(PluginSettings(autoload=False), _plugins=plugins)
    result = CliRunner().invoke(run_command, ["--task", "toy", "--rounds", "3"], obj=state)
    assert result.exit_code == 2 and "No such option '--rounds'" in result.output


def _run(state, tmp_path, *args):
    return CliRunner().invoke(run_command, ["--task", "toy", "--epochs", "2", "--no-compare-baseline",
                                            "--out", str(tmp_path / "r"), *args], obj=state)


def test_a_flag_for_another_policy_names_the_policy_and_what_it_accepts(state, tmp_path):
    result = _run(state, tmp_path, "--policy", "replayer", "--horizon", "4")
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == ("[policy] horizon (--horizon) is an option of policy 'stepper', not of policy "
                                     "'replayer'; the training options 'replayer' accepts: --rounds, --replay")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_a_flag_for_a_policy_that_is_not_learned_is_refused(state, tmp_path):
    result = _run(state, tmp_path, "--policy", "scripted", "--no-greedy")
    assert isinstance(result.exception, ConfigError)
    assert "greedy (--greedy) only applies when training a learned policy; policy 'scripted'" \
        in str(result.exception)


def test_flags_and_policy_options_reach_the_policy_table(state):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "stepper"},
                                  "policy": {"rounds": 5, "greedy": False}})
    resolved = resolve_run(config, state.catalog)
    check_training_options(resolved.policy, state.catalog, config.policy_options, training=True)
    with pytest.raises(ConfigError, match="only applies when training"):
        check_training_options(resolved.policy, state.catalog, config.policy_options, training=False)


def test_a_config_file_policy_table_is_checked_like_the_flags(state, tmp_path):
    resolved = resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": "stepper", "epochs": 2},
                                                "policy": {"replay": "somewhere"}}), state.catalog)
    with pytest.raises(ConfigError, match=r"replay \(--replay\) is an option of policy 'replayer'"):
        execute_run(resolved, state.catalog, create_run_dir(tmp_path / "a"))
    # A run refused before it starts leaves its id off the caller's later log records.
    assert "run_id" not in structlog.contextvars.get_contextvars()


def test_declarations_are_checked():
    with pytest.raises(TypeError, match="must be one of bool, int, float, str"):
        TrainingOption(name="rounds", type=list, help="x")
    with pytest.raises(ValueError, match="declares a name twice"):
        PolicySpec(name="p", factory=lambda context: None, description="d",
                   training_options=[TrainingOption(name="a", type=int, help="x")] * 2)
    with pytest.raises(ValueError, match="unknown role 'leader'"):
        PolicySpec(name="p", factory=lambda context: None, description="d", roles=("leader",))


def test_core_declares_no_training_option_itself():
    for path in ESPER_CORE_SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for flag in ('"--rounds"', '"--envs"', '"--episode-length"', '"--dataset"', "TRAINING_OPTIONS"):
            assert flag not in text, f"{path.relative_to(ESPER_CORE_SRC)} names {flag}"


def test_a_declared_option_never_shadows_one_of_the_commands_own_flags():
    module = types.ModuleType("shadowing")

    @hookimpl
    def esper_register_policies():
        return [PolicySpec(name="shadow", factory=lambda context: None, trainer=_trainer, description="test",
                           training_options=(TrainingOption(name="seed", type=int, help="trainer seed"),))]

    module.esper_register_policies = esper_register_policies
    plugins = load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("shadowing", module)])
    state = AppState(PluginSettings(autoload=False), _plugins=plugins)
    result = CliRunner().invoke(run_command, ["--help"], obj=state)
    assert result.exit_code == 0 and result.output.count("--seed") == 1 and "trainer seed" not in result.output


def test_the_option_that_extends_a_finished_run_on_resume(state):
    from esper_core.setup.training_options import resume_extension

    assert resume_extension(state.catalog.policies.get("stepper")).flag == "--rounds"
    assert resume_extension(state.catalog.policies.get("scripted")) is None
    check_training_options(state.catalog.policies.get("scripted"), state.catalog, {"other": 1}, training=False)
