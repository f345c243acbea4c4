"""Every generator seeded from a run seed plus an offset takes any seed a run accepts (0 … 2**63 - 1)."""

from __future__ import annotations

import types

import pytest
import torch

from esper_core.options import INT_MAX
from esper_core.scaffold.names import PluginNames
from esper_core.scaffold.render import Kind, render_plugin
from esper_core.setup.seeding import generator_seed
from esper_core.testing import toy


def test_ordinary_seeds_keep_the_numbers_they_always_had():
    # seeded results in the docs depend on them: seed * 100_003 + stream, unchanged below 2**64
    for seed in (0, 1, 3, 42, 7001, 10**9, 2**40, 184_000_000_000_000):
        for stream in (0, 1, 5, 99):
            assert generator_seed(seed, stream) == seed * 100_003 + stream


@pytest.mark.parametrize("seed", [200_000_000_000_000, 2**62, INT_MAX - 1, INT_MAX])
def test_the_largest_seeds_give_generators_torch_accepts(seed):
    for stream in (0, 1, 10**5):
        value = generator_seed(seed, stream)
        assert 0 <= value < 2**64
        torch.Generator().manual_seed(value)  # raised "Overflow when unpacking long long" before


def test_distinct_seeds_keep_distinct_streams_near_the_top():
    top = 2**64 // 100_003  # where seed * 100_003 first passes 2**64
    seeds = [*range(INT_MAX - 2000, INT_MAX + 1), *range(2000), *range(top - 1000, top + 1000)]
    for stream in (0, 7):
        assert len({generator_seed(s, stream) for s in seeds}) == len(seeds)


def test_the_toy_task_shuffles_with_the_largest_seed():
    task = toy.ToyTask(seed=INT_MAX, device="cpu", options={})
    x, y = next(iter(task.train_batches(epoch=3)))
    assert x.shape[0] == y.shape[0] > 0


def _task_from(module: types.ModuleType, *, seed: int):
    classes = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__
               and hasattr(v, "train_batches")]
    assert len(classes) == 1, classes
    return classes[0](seed=seed, device="cpu", options={})


def test_the_scaffolded_task_shuffles_with_the_largest_seed():
    # The task template users copy: rendered, imported and shuffled for epoch 3 of run seed 2**63 - 1.
    files = render_plugin(PluginNames.from_distribution("esper-solo"), [Kind.TASK], core_version="0.1.0")
    source = files["src/esper_solo/task.py"]
    assert "100_003" not in source and "generator_seed(self.seed, epoch)" in source
    module = types.ModuleType("esper_solo_task")
    exec(compile(source, "task.py", "exec"), module.__dict__)
    task = _task_from(module, seed=INT_MAX)
    x, y = next(iter(task.train_batches(epoch=3)))
    assert x.shape[0] == y.shape[0] > 0
