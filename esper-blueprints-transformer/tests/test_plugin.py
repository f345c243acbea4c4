"""The plugin module: torch-free import, catalog contents, task specs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from esper_blueprints_transformer import TRANSFORMER_DEFAULTS, params, plugin
from esper_core.contracts.specs import BlueprintSpec, TaskSpec


def test_plugin_imports_and_registers_without_torch() -> None:
    code = (
        "import sys\n"
        "from esper_blueprints_transformer import plugin\n"
        "specs = plugin.esper_register_blueprints() + plugin.esper_register_tasks()\n"
        "[spec.param_estimate(64) for spec in plugin.esper_register_blueprints()]\n"
        "print(len(specs), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["10", "False"]


def test_catalog_indices_names_and_keys() -> None:
    specs = plugin.esper_register_blueprints()
    assert all(isinstance(s, BlueprintSpec) for s in specs)
    assert {s.action_index: s.name for s in specs} == {
        0: "noop", 2: "attention", 3: "norm", 8: "lora", 9: "lora_large",
        10: "mlp_small", 11: "mlp", 12: "flex_attention",
    }
    assert all(s.key == f"transformer:{s.name}" for s in specs)
    assert all(s.topology == "transformer" and not s.is_antipattern for s in specs)
    assert all(s.identity_at_init for s in specs)
    assert all(s.paper for s in specs if s.name != "noop")


def test_hooks_carry_the_esper_marker() -> None:
    for hook in (plugin.esper_register_blueprints, plugin.esper_register_tasks):
        assert hasattr(hook, "esper_impl")


def test_task_specs_defaults_and_kasmina() -> None:
    tasks = {t.name: t for t in plugin.esper_register_tasks()}
    assert set(tasks) == {"pytext", "textfile"}
    names = {s.name for s in plugin.esper_register_blueprints()}
    for task in tasks.values():
        assert isinstance(task, TaskSpec)
        assert task.topology == "transformer"
        assert task.kasmina is TRANSFORMER_DEFAULTS
        assert task.defaults.training.optimizer == "adamw" and task.defaults.training.weight_decay == 0.01
        assert task.defaults.blueprints and set(task.defaults.blueprints) <= names
        assert task.defaults.slots == ("layer1", "layer2")


def test_transformer_defaults_keep_host_attached_while_blending() -> None:
    assert TRANSFORMER_DEFAULTS.lifecycle.detach_host_in_blending is False
    assert 0 < TRANSFORMER_DEFAULTS.gates.g2_gradient_ratio < 1


@pytest.mark.parametrize("width", [1, 7, 16, 48, 64, 100])
def test_seed_heads_divide_width(width: int) -> None:
    heads = params.seed_heads(width)
    assert heads >= 1 and width % heads == 0
    assert heads <= max(1, width // params.SEED_HEAD_DIM)


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "64"])
def test_estimates_reject_bad_width(bad: object) -> None:
    for spec in plugin.esper_register_blueprints():
        with pytest.raises(ValueError, match="width"):
            spec.param_estimate(bad)  # type: ignore[arg-type]


def test_topology_hook_declares_the_sequence_layout() -> None:
    import torch

    (topology,) = plugin.esper_register_topologies()
    assert topology.name == "transformer"
    x = topology.example_input(width=3, size=5, batch=2, generator=torch.Generator().manual_seed(0))
    assert tuple(x.shape) == (2, 5, 3)
    assert not any(t.is_default for t in plugin.esper_register_tasks())
