from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import esper_blueprints_cnn
from esper_blueprints_cnn import CNN_DEFAULTS, plugin
from esper_blueprints_cnn.host import CNNHost, HostConfig
from esper_blueprints_cnn.micro import MICRO_KASMINA
from esper_core.contracts.run_defaults import RunDefaults
from esper_core.contracts.specs import BlueprintSpec, TaskSpec
from esper_core.lazy import LazyCallable
from esper_core.plugins import PluginSettings, build_catalog, load_plugins

CATALOG_INDICES = set(range(0, 8)) | set(range(13, 24))


def test_blueprint_hook_returns_the_catalog() -> None:
    specs = plugin.esper_register_blueprints()
    assert all(isinstance(s, BlueprintSpec) for s in specs)
    assert {s.action_index for s in specs} == CATALOG_INDICES
    assert len({s.name for s in specs}) == len(specs) == 19
    # The blueprints the discovery grammar can express carry their token form.
    assert {s.name for s in specs if s.tokens} == {"noop", "conv_light", "attention", "norm", "depthwise",
                                                   "bottleneck", "conv_small", "conv_heavy", "dilated"}
    for s in specs:
        assert s.topology == "cnn" and not s.is_antipattern
        assert isinstance(s.factory, LazyCallable)
        assert callable(s.factory.resolve())
        assert isinstance(s.param_estimate(32), int)


def test_task_hook_returns_valid_tasks() -> None:
    tasks = {t.name: t for t in plugin.esper_register_tasks()}
    assert set(tasks) == {"shapes", "micro", "cifar10", "cifar100", "imagefolder", "arrays"}
    blueprint_names = {s.name for s in plugin.esper_register_blueprints()}
    slot_names = {p.name for p in CNNHost().injection_points}
    for t in tasks.values():
        assert isinstance(t, TaskSpec) and t.topology == "cnn"
        assert t.kasmina is (MICRO_KASMINA if t.name == "micro" else CNN_DEFAULTS)
        assert isinstance(t.defaults, RunDefaults)
        assert t.defaults.blueprints and set(t.defaults.blueprints) <= blueprint_names
        assert t.defaults.slots and set(t.defaults.slots) <= slot_names
        assert t.defaults.training.optimizer == "adamw"
        assert callable(t.factory.resolve())


def test_shapes_epochs_fit_two_lifecycles_one_after_the_other() -> None:
    shapes = next(t for t in plugin.esper_register_tasks() if t.name == "shapes")
    life, gates = CNN_DEFAULTS.lifecycle, CNN_DEFAULTS.gates
    # From the first decision: GERMINATED, TRAINING, BLENDING, SHADOWING, PROBATIONARY, twice
    # (a seed culled at G5's timeout leaves time for another).
    one = 1 + gates.g2_min_epochs + life.blending_epochs + gates.g4_window + 1
    assert 2 * one <= shapes.defaults.epochs <= 30


def test_cnn_defaults_train_the_host_through_a_blending_seed() -> None:
    assert CNN_DEFAULTS.lifecycle.detach_host_in_blending is False
    assert CNN_DEFAULTS.gates.g2_test == "not_worse"
    assert CNN_DEFAULTS.gates.g3_min_epochs == CNN_DEFAULTS.lifecycle.blending_epochs


def test_shapes_resolves_its_own_seed_limit_and_recipe() -> None:
    from esper_core.config import RunConfig
    from esper_core.setup.resolve import resolve_run

    catalog = build_catalog(load_plugins(PluginSettings(allow=("cnn", "policies", "core"))))
    resolved = resolve_run(RunConfig.from_dict({"run": {"task": "shapes", "policy": "noop"}}), catalog)
    assert resolved.max_seeds == 3 and resolved.slots == ("block1", "block2", "block3")
    assert (resolved.training.lr, resolved.training.lr_schedule) == (1e-2, "cosine")
    assert resolved.to_toml_dict()["run"]["max_seeds"] == 3
    mine = resolve_run(RunConfig.from_dict({"run": {"task": "shapes", "policy": "noop", "max_seeds": 1}}), catalog)
    assert mine.max_seeds == 1
    micro = resolve_run(RunConfig.from_dict({"run": {"task": "micro", "policy": "noop"}}), catalog)
    assert micro.max_seeds == 1


def test_plugin_loads_through_the_entry_point() -> None:
    loaded = load_plugins(PluginSettings(allow=("cnn",), strict=True))
    catalog = build_catalog(loaded)
    assert not catalog.failures
    assert catalog.blueprints.resolve("conv_light", "cnn").action_index == 1
    assert "shapes" in catalog.tasks


def test_importing_the_plugin_does_not_import_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        import esper_blueprints_cnn
        from esper_blueprints_cnn import plugin, CNN_DEFAULTS
        specs = plugin.esper_register_blueprints() + plugin.esper_register_tasks()
        print(sum(s.param_estimate(32) for s in specs if hasattr(s, "param_estimate")))
        print("torch" in sys.modules, "torchvision" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    total, torch_loaded = out.stdout.strip().splitlines()
    assert int(total) > 0
    assert torch_loaded == "False False"


def test_package_exports_host_lazily() -> None:
    assert esper_blueprints_cnn.CNNHost is CNNHost
    assert esper_blueprints_cnn.HostConfig is HostConfig
    with pytest.raises(AttributeError, match="nothing"):
        esper_blueprints_cnn.nothing  # noqa: B018


def test_shapes_prices_blueprints_at_its_widest_block() -> None:
    from esper_blueprints_cnn.tasks.procedural import DEFAULT_OPTIONS

    shapes = next(t for t in plugin.esper_register_tasks() if t.name == "shapes")
    assert shapes.slot_width == max(DEFAULT_OPTIONS.widths) == 16


def test_topology_hook_declares_the_nchw_layout() -> None:
    import torch

    (topology,) = plugin.esper_register_topologies()
    assert topology.name == "cnn"
    x = topology.example_input(width=3, size=5, batch=2, generator=torch.Generator().manual_seed(0))
    assert tuple(x.shape) == (2, 3, 5, 5)


def test_only_the_shapes_task_is_the_default() -> None:
    assert [t.name for t in plugin.esper_register_tasks() if t.is_default] == ["shapes"]
