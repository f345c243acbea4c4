"""A policy checkpoint is data, checked before anything is built from it: a network wider than
MAX_HIDDEN, an architecture that does not fit the run, weights of the wrong shape and
non-finite weights or statistics are refused with a one-line ConfigError naming the file."""

from __future__ import annotations

import pytest
import torch

from esper_core.config import RunConfig
from esper_core.errors import ConfigError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.tolaria.job import execute_run
from esper_policies import checkpoint, plugin

SLOTS = ("hidden1", "hidden2")
KEYS = ("toy:residual_linear",)


def _train(out, **options):
    catalog = build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("policies", plugin)]))
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "ppo", "epochs": 3, "seed": 3},
                                  "policy": {"rounds": 1, "envs": 1, "update_epochs": 1, "hidden": 8,
                                             "normalize_observations": True, **options}})
    execute_run(resolve_run(config, catalog), catalog, create_run_dir(out))
    return out / "policy.pt"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("ppo") / "run")


def _crafted(trained, tmp_path, change):
    data = torch.load(trained, weights_only=True)
    change(data["payload"])
    path = tmp_path / "crafted.pt"
    torch.save(data, path)
    return path


def _nan_weight(payload):
    payload["state_dict"]["op_head.weight"][0, 0] = float("nan")


def _wide(payload):
    payload["architecture"]["hidden"] = 1_000_000


def _huge_but_within_cap(payload):
    payload["architecture"]["hidden"] = 16384  # shapes no longer match the stored weights


@pytest.mark.parametrize(("change", "message"), [
    (_wide, "asks for a trunk 1000000 units wide; at most 16384"),
    (_huge_but_within_cap, "its weights do not match its architecture|should have shape"),
    (lambda p: p["architecture"].update(trunk="transformer"), "asks for trunk 'transformer'"),
    (lambda p: p["architecture"].update(n_slots=5), "architecture n_slots = 5, but its slots"),
    (lambda p: p["architecture"].update(obs_size="57"), "architecture obs_size is str, not an integer"),
    (lambda p: p.update(architecture=[1, 2]), "its architecture is not a table"),
    (lambda p: p["architecture"].update(slot_head="attention"),
     "asks for slot head 'attention'; known: linear, shared"),
    (lambda p: p["architecture"].update(slot_heads="shared"), "its architecture is not a table"),
    (_nan_weight, r"has non-finite weights \(op_head.weight\)"),
    (lambda p: p["state_dict"].pop("value_head.bias"), "its weights do not match its architecture"),
    (lambda p: p["state_dict"].update({"op_head.weight": torch.zeros(2, 2)}),
     "weight op_head.weight should have shape"),
    (lambda p: p["obs_norm"]["var"].fill_(float("inf")), "observation var is not"),
    (lambda p: p["obs_norm"].update(count=-1.0), "observation count -1.0"),
    (lambda p: p.update(training=None), "its training state is not a table"),
])
def test_a_crafted_policy_checkpoint_is_refused_before_building(trained, tmp_path, change, message):
    path = _crafted(trained, tmp_path, change)
    with pytest.raises(ConfigError, match=message) as info:
        checkpoint.load(path, policy="ppo", blueprint_keys=KEYS, slot_names=SLOTS)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_untouched_checkpoint_loads(trained):
    loaded = checkpoint.load(trained, policy="ppo", blueprint_keys=KEYS, slot_names=SLOTS)
    assert loaded.network.hidden == 8 and loaded.obs_norm is not None and loaded.critic is None


def test_a_checkpoint_written_before_slot_heads_loads_with_the_linear_head(trained, tmp_path):
    path = _crafted(trained, tmp_path, lambda p: p["architecture"].pop("slot_head"))
    loaded = checkpoint.load(path, policy="ppo", blueprint_keys=KEYS, slot_names=SLOTS)
    assert loaded.network.slot_head_kind == "linear"
    untouched = checkpoint.load(trained, policy="ppo", blueprint_keys=KEYS, slot_names=SLOTS)
    assert untouched.network.slot_head_kind == "linear"


def test_a_shared_slot_head_trains_and_is_rebuilt_from_its_checkpoint(tmp_path):
    path = _train(tmp_path / "run", slot_head="shared")
    loaded = checkpoint.load(path, policy="ppo", blueprint_keys=KEYS, slot_names=SLOTS)
    assert loaded.network.slot_head_kind == "shared"
    with pytest.raises(ConfigError, match="its weights do not match its architecture|should have shape"):
        checkpoint.load(_crafted(path, tmp_path, lambda p: p["architecture"].update(slot_head="linear")),
                        policy="ppo", blueprint_keys=KEYS, slot_names=SLOTS)
