"""Batched training of same-structure candidates equals training each one alone."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from esper_core.discovery import batched
from esper_core.discovery.batched import Scaffold, TrainData, train_batched, train_mixed, train_single
from esper_core.discovery.compile import compile_program
from esper_core.discovery.curriculum import installed_tasks

STRUCTURES = [
    "RELU",
    "RES_START CONV KERNEL_3 OUT_IN NORM RELU SCALE RES_END",
    "GATE_START POOL_GLOBAL LINEAR OUT_D4 RELU LINEAR OUT_IN ZERO_INIT GATE_END CONV KERNEL_3 DEPTHWISE OUT_IN TANH",
    "RES_START CONV KERNEL_1 OUT_X2 GELU POOL_MAX3 CONV KERNEL_5 DILATE_2 OUT_IN RES_END POOL_AVG3 NORM",
]


def _models(task, tokens, m, dtype):
    models = []
    for seed in range(m):
        torch.manual_seed(seed)
        model = Scaffold(task.make_stem(task.width), compile_program(tokens.split(), task.slot_shape),
                         task.make_head())
        models.append(model.to(dtype))
    return models


def _data(task, dtype):
    d = task.make_data(0)
    return TrainData(x_train=d.x_train.to(dtype), y_train=d.y_train, x_eval=d.x_eval.to(dtype),
                     y_eval=d.y_eval, x_probe=d.x_probe.to(dtype))


def _compare(task, tokens, m, steps, dtype, atol):
    data = _data(task, dtype)
    models = _models(task, tokens, m, dtype)
    alone = [train_single(copy.deepcopy(model), data, steps=steps, lr=task.lr) for model in models]
    together = train_batched(models, data, steps=steps, lr=task.lr)
    torch.testing.assert_close(together.losses, torch.cat([r.losses for r in alone], 1), atol=atol, rtol=0)
    torch.testing.assert_close(together.probe, torch.cat([r.probe for r in alone]), atol=atol, rtol=0)
    assert torch.equal(together.accuracy, torch.cat([r.accuracy for r in alone]))
    assert together.stable.all()
    return together


@pytest.mark.parametrize("task_name", ["xor", "temporal", "image"])
@pytest.mark.parametrize("tokens", STRUCTURES)
def test_batched_matches_alone_float64(task_name, tokens):
    # float64 and 15 steps: some candidates are chaotic (a GroupNorm over two channels of a 1×1
    # slot grows a 1e-16 difference ~6× per Adam step), so long float32 runs part by rounding
    # alone; here any real difference of computation would still show.
    _compare(installed_tasks()[task_name], tokens, m=3, steps=15, dtype=torch.float64, atol=1e-4)


def test_batched_matches_alone_float32_on_the_benchmark_candidate():
    result = _compare(installed_tasks()["xor"], "RELU", m=8, steps=100, dtype=torch.float32, atol=1e-4)
    assert result.accuracy.min() > 0.9  # 2→16→ReLU→2 solves XOR


def test_a_diverging_model_does_not_touch_the_others():
    task = installed_tasks()["image"]
    data = _data(task, torch.float32)
    models = _models(task, "RES_START CONV KERNEL_3 OUT_IN NORM RELU SCALE RES_END", 3, torch.float32)
    with torch.no_grad():
        models[1].stem[0].weight.fill_(float("nan"))
    alone = train_single(copy.deepcopy(models[0]), data, steps=10, lr=task.lr)
    together = train_batched(models, data, steps=10, lr=task.lr)
    assert together.stable.tolist() == [True, False, True]
    torch.testing.assert_close(together.losses[:, 0], alone.losses[:, 0], atol=1e-5, rtol=0)


def test_parameter_free_scaffold_parts_and_unknown_modules():
    task = installed_tasks()["xor"]
    data = _data(task, torch.float32)
    bad = Scaffold(torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Dropout()), torch.nn.Identity(),
                   task.make_head())
    with pytest.raises(TypeError, match="cannot run Dropout"):
        train_batched([bad], data, steps=1, lr=0.1)


@pytest.mark.parametrize("task_name", ["xor", "temporal", "image"])
def test_mixed_structures_train_together_as_they_do_alone(task_name):
    # Different structures in one computation (stem, head, loss and Adam shared; each blueprint
    # on its slice of the model axis) give each model what it gets alone: float64, 15 steps, as above.
    task = installed_tasks()[task_name]
    data = _data(task, torch.float64)
    groups = [_models(task, tokens, m, torch.float64) for tokens, m in zip(STRUCTURES, (2, 1, 3, 1), strict=True)]
    alone = [train_single(copy.deepcopy(model), data, steps=15, lr=task.lr) for group in groups for model in group]
    together = train_mixed(groups, data, steps=15, lr=task.lr)
    torch.testing.assert_close(together.losses, torch.cat([r.losses for r in alone], 1), atol=1e-4, rtol=0)
    torch.testing.assert_close(together.probe, torch.cat([r.probe for r in alone]), atol=1e-4, rtol=0)
    assert torch.equal(together.accuracy, torch.cat([r.accuracy for r in alone]))
    assert together.stable.all()


def test_mixed_training_needs_models():
    with pytest.raises(ValueError, match="no empty group"):
        train_mixed([[]], _data(installed_tasks()["xor"], torch.float32), steps=1, lr=0.1)


# Every op kind of the grammar, nested residuals and gates, and structures that share keyed
# instructions (convolutions, linear layers, max pools) so the lockstep interpreter groups them.
LOCKSTEP = [
    "CONV KERNEL_5 OUT_IN GELU",
    "RELU CONV KERNEL_5 OUT_IN TANH",
    "RES_START CONV KERNEL_3 DILATE_2 OUT_IN NORM RES_START SILU CONV KERNEL_5 OUT_IN RES_END SCALE RES_END POOL_MAX3",
    "GATE_START POOL_GLOBAL LINEAR OUT_D4 RELU LINEAR OUT_IN ZERO_INIT GATE_END CONV KERNEL_7 DEPTHWISE OUT_IN SIGMOID",
    "RES_START GATE_START POOL_GLOBAL LINEAR OUT_D4 SILU LINEAR OUT_IN GATE_END POOL_AVG3 RES_END "
    "CONV KERNEL_7 DILATE_2 DEPTHWISE OUT_IN POOL_MAX3",
    "GATE_START CONV KERNEL_3 OUT_IN GATE_END CONV KERNEL_1 OUT_X2 CONV KERNEL_1 OUT_IN ZERO_INIT",
    "CONV KERNEL_1 DEPTHWISE OUT_IN CONV KERNEL_3 OUT_IN POOL_MAX3 NORM",
    "IDENTITY",
    "CONV KERNEL_1 OUT_D2 RELU CONV KERNEL_7 DILATE_2 OUT_IN POOL_AVG3 SCALE",
    "CONV KERNEL_7 DILATE_2 OUT_IN CONV KERNEL_3 DILATE_2 DEPTHWISE OUT_IN",
]


def test_lockstep_plan_groups_shared_instructions_and_keeps_each_structure_in_order():
    task = installed_tasks()["image"]
    codes = [batched._program(compile_program(t.split(), task.slot_shape), "") for t in LOCKSTEP]
    plan = batched._plan(codes, task.slot_shape)
    ran = [0] * len(codes)
    keys = [[batched._key(i[1], sh) for i, sh in zip(c, batched._shapes(c, task.slot_shape), strict=True)]
            for c in codes]
    for entry in plan:
        assert len(set(entry)) == len(entry)
        assert len({keys[t][ran[t]] for t in entry}) == 1  # one call: one key
        if len(entry) > 1:
            assert keys[entry[0]][ran[entry[0]]] is not None
        for t in entry:
            ran[t] += 1
    assert ran == [len(c) for c in codes]  # every instruction once
    # the 5×5, 3×3 and 7×7-dilated convolutions, the 1×1 to OUT_IN and the OUT_D4 linear are shared
    assert len([entry for entry in plan if len(entry) > 1]) >= 4


@pytest.mark.parametrize("task_name", ["xor", "temporal", "image"])
def test_lockstep_groups_train_as_each_structure_does_alone(task_name):
    # Structures sharing convolutions and linear layers run them as one call over their models;
    # each model still gets exactly what it gets alone (float64, 15 steps, as above).
    task = installed_tasks()[task_name]
    data = _data(task, torch.float64)
    groups = [_models(task, tokens, 2 if i % 3 == 0 else 1, torch.float64) for i, tokens in enumerate(LOCKSTEP)]
    alone = [train_single(copy.deepcopy(model), data, steps=15, lr=task.lr) for group in groups for model in group]
    together = train_mixed(groups, data, steps=15, lr=task.lr)
    torch.testing.assert_close(together.losses, torch.cat([r.losses for r in alone], 1), atol=1e-4, rtol=0)
    torch.testing.assert_close(together.probe, torch.cat([r.probe for r in alone]), atol=1e-4, rtol=0)
    assert torch.equal(together.accuracy, torch.cat([r.accuracy for r in alone]))
    assert together.stable.all()


@pytest.mark.parametrize("spatial", [(8, 8), (1, 16)])
def test_pools_match_torch_pooling(spatial):
    # Max pool: the channels-last kernel gives the same values and sends each gradient to the
    # same input on ties (ReLU zeros); average pool: the same window sums, counted padding.
    torch.manual_seed(0)
    x = torch.relu(torch.randn(16, 3, 4, *spatial, dtype=torch.float64)).requires_grad_()
    g = torch.randn(16, 3, 4, *spatial, dtype=torch.float64)
    flat = x.reshape(16, 12, *spatial)
    want = F.max_pool2d(flat, 3, stride=1, padding=1).reshape(x.shape)
    got = batched._forward(torch.nn.MaxPool2d(3, stride=1, padding=1), {}, "", x, 3)
    assert torch.equal(got, want)
    assert torch.equal(torch.autograd.grad(got, x, g)[0], torch.autograd.grad(want, x, g)[0])
    want = F.avg_pool2d(flat, 3, stride=1, padding=1).reshape(x.shape)
    got = batched._forward(torch.nn.AvgPool2d(3, stride=1, padding=1), {}, "", x, 3)
    torch.testing.assert_close(got, want, atol=1e-14, rtol=0)
    torch.testing.assert_close(torch.autograd.grad(got, x, g)[0], torch.autograd.grad(want, x, g)[0],
                               atol=1e-14, rtol=0)
