"""What a run uses when the user names nothing comes from what is installed (TaskSpec.is_default,
PolicySpec.roles), never from names in core."""

from __future__ import annotations

import types

import pytest
from engine_helpers import _policies_plugin

from esper_core.config import RunConfig
from esper_core.contracts import PolicySpec, TaskSpec
from esper_core.errors import ConfigError
from esper_core.markers import hookimpl
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.defaults import baseline_policy, comparison_policies, default_policy, default_task
from esper_core.setup.resolve import resolve_run
from esper_core.testing import toy


def _defaults_plugin(name: str, *, task: bool = True, roles: tuple[str, ...] = ()) -> types.ModuleType:
    module = types.ModuleType(f"{name}_plugin")

    @hookimpl
    def esper_register_tasks():
        return [TaskSpec(name=f"{name}-task", topology=toy.TOPOLOGY, factory=toy.ToyTask, description="test",
                         is_default=task)]

    @hookimpl
    def esper_register_policies():
        return [PolicySpec(name=f"{name}-policy", factory=lambda context: None, description="test", roles=roles)]

    module.esper_register_tasks = esper_register_tasks
    module.esper_register_policies = esper_register_policies
    return module


def _catalog(*plugins):
    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=list(plugins)))


def test_everything_installed_runs_shapes_with_heuristic_against_noop():
    catalog = build_catalog(load_plugins(PluginSettings.from_env()))
    resolved = resolve_run(RunConfig(), catalog)
    assert (resolved.task.name, resolved.policy.name) == ("shapes", "heuristic")
    assert baseline_policy(catalog).name == "noop"
    assert comparison_policies(catalog) == ("heuristic", "random", "noop")


def test_the_declared_defaults_are_used_and_names_still_win():
    catalog = _catalog(("toy", toy), ("mine", _defaults_plugin("mine", roles=("default", "baseline"))))
    assert default_task(catalog).name == "mine-task" and default_policy(catalog).name == "mine-policy"
    assert baseline_policy(catalog).name == "mine-policy"
    resolved = resolve_run(RunConfig(task="toy", epochs=1), catalog)
    assert (resolved.task.name, resolved.policy.name) == ("toy", "mine-policy")


def test_nothing_declared_says_what_to_install_or_pass():
    catalog = _catalog(("toy", toy), ("scripted", _policies_plugin(baseline_role=False)))
    with pytest.raises(ConfigError, match=r"no installed plugin declares a default task; pip install "
                                          r"esper-blueprints-cnn \(its shapes task\), or pass --task NAME "
                                          r"\(installed: toy\)"):
        resolve_run(RunConfig(), catalog)
    with pytest.raises(ConfigError, match="no installed plugin declares a default policy; .*or pass --policy NAME"):
        resolve_run(RunConfig(task="toy"), catalog)
    with pytest.raises(ConfigError, match="baseline policy; .*or pass --no-compare-baseline"):
        baseline_policy(catalog)
    with pytest.raises(ConfigError, match="name some with --against"):
        comparison_policies(catalog)


def test_two_declared_defaults_name_both_distributions():
    catalog = _catalog(("one", _defaults_plugin("one", roles=("default",))),
                       ("two", _defaults_plugin("two", roles=("default",))))
    one, two = (catalog.tasks.provider(n).distribution for n in ("one-task", "two-task"))
    with pytest.raises(ConfigError) as caught:
        default_task(catalog)
    assert str(caught.value) == (f"two installed plugins declare the default task: 'one-task' (from {one}) and "
                                 f"'two-task' (from {two}); pass --task NAME or uninstall one")
    with pytest.raises(ConfigError, match="declare the default policy: 'one-policy' .* and 'two-policy'"):
        default_policy(catalog)
