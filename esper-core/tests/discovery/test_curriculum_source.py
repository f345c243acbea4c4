"""The Crucible's tasks come from the installed topology that declares them; core has none."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from esper_core.contracts import TopologySpec
from esper_core.discovery.crucible import Crucible, CrucibleConfig
from esper_core.discovery.curriculum import CrucibleTask, discovery_topology, get_tasks, tasks_of
from esper_core.errors import ConfigError
from esper_core.markers import hookimpl
from esper_core.plugins import PluginSettings, build_catalog, load_plugins

CORE = Path(__file__).resolve().parents[2] / "src" / "esper_core"


def _topologies_plugin(*names: str, tasks: bool = True) -> types.ModuleType:
    module = types.ModuleType("topologies")

    @hookimpl
    def esper_register_topologies():
        return [TopologySpec(name=n, description="test", example_input=lambda **kw: None,
                             crucible_tasks=(lambda: []) if tasks else None) for n in names]

    module.esper_register_topologies = esper_register_topologies
    return module


def _catalog(plugin):
    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("t", plugin)]))


def test_the_installed_cnn_topology_provides_the_default_curriculum():
    catalog = build_catalog(load_plugins(PluginSettings.from_env()))
    topology = discovery_topology(catalog)
    assert topology.name == "cnn" and catalog.topologies.provider("cnn").distribution == "esper-blueprints-cnn"
    assert [t.name for t in Crucible(CrucibleConfig(steps=1)).tasks] == ["xor", "temporal", "image"]


def test_a_crucible_scores_on_the_curriculum_it_is_given():
    task = get_tasks(("xor",))[0]
    mine = {"mine": CrucibleTask(name="mine", description="d", width=4, slot_spatial=(1, 1), n_classes=2,
                                 steps=1, lr=0.1, make_data=task.make_data, make_stem=task.make_stem)}
    assert [t.name for t in Crucible(CrucibleConfig(), curriculum=mine).tasks] == ["mine"]


def test_no_or_two_topologies_with_tasks_are_clear_errors():
    with pytest.raises(ConfigError, match="no installed topology declares Crucible tasks.*esper-blueprints-cnn"):
        discovery_topology(_catalog(_topologies_plugin("flat", tasks=False)))
    with pytest.raises(ConfigError, match="two installed topologies declare Crucible tasks: 'a' .* and 'b'"):
        discovery_topology(_catalog(_topologies_plugin("a", "b")))
    with pytest.raises(ConfigError, match="topology 'flat' declares no Crucible tasks"):
        tasks_of(TopologySpec(name="flat", description="d", example_input=lambda **kw: None))


def test_core_discovery_defines_no_curriculum_task():
    for path in (CORE / "discovery").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "nn.Conv2d(1" not in text and 'name="xor"' not in text and "IMAGE_SIZE" not in text, path.name
    assert 'TOPOLOGY = "cnn"' not in (CORE / "cli" / "discover_cmd.py").read_text(encoding="utf-8")


def test_token_blueprints_take_the_slot_layout_their_topology_declares():
    from esper_core.discovery.library import token_topologies

    assert token_topologies() == {"cnn": (1, 1)}  # esper-blueprints-cnn's; the transformer declares none
    with pytest.raises(ValueError, match="token_spatial must be positive integers"):
        TopologySpec(name="flat", description="d", example_input=lambda **kw: None, token_spatial=(0,))
    assert "SLOT_SPATIAL" not in (CORE / "discovery" / "library.py").read_text(encoding="utf-8")
