"""The Crucible: invalid candidates, grouping, fitness terms, determinism, hall of fame."""

from __future__ import annotations

import pytest
import torch

from esper_core.discovery import batched, crucible
from esper_core.discovery.crucible import Crucible, CrucibleConfig, FitnessWeights, HallOfFame, linear_cka
from esper_core.discovery.curriculum import get_tasks, installed_tasks
from esper_core.errors import UnknownNameError

CONV_LIGHT = tuple("RES_START CONV KERNEL_3 OUT_IN NORM RELU SCALE RES_END".split())
QUIET = FitnessWeights(latency_weight=0.0)


def _crucible(**kw):
    return Crucible(CrucibleConfig(tasks=kw.pop("tasks", ("xor", "temporal")), steps=kw.pop("steps", 30),
                                   weights=kw.pop("weights", QUIET), **kw))


def test_invalid_candidates_score_minus_one_without_training(monkeypatch):
    calls = []
    monkeypatch.setattr(crucible, "train_mixed", lambda *a, **k: calls.append(a) or batched.train_mixed(*a, **k))
    c = _crucible()
    (ev,) = c.evaluate([("LINEAR", "KERNEL_5", "OUT_IN")])
    assert ev.fitness == -1.0 and not ev.valid
    assert ev.reason == "xor slot (16, 1, 1): token 1: KERNEL_5: a kernel size applies to CONV, not LINEAR"
    assert calls == []


def _spy_group_sizes(monkeypatch):
    sizes = []

    def spy(groups, *a, **k):
        sizes.append([len(g) for g in groups])
        return batched.train_mixed(groups, *a, **k)

    monkeypatch.setattr(crucible, "train_mixed", spy)
    return sizes


def test_all_structures_train_together_in_one_call_per_task(monkeypatch):
    sizes = _spy_group_sizes(monkeypatch)
    c = _crucible()
    evs = c.evaluate([("RELU",), CONV_LIGHT, ("RELU",), ("BAD",), CONV_LIGHT, ("RELU",)])
    assert sizes == [[3, 2], [3, 2]]  # one call per task, each structure one group
    assert [e.valid for e in evs] == [True, True, True, False, True, True]
    assert [e.tokens for e in evs][:3] == [("RELU",), CONV_LIGHT, ("RELU",)]


MIXED = [("RELU",), CONV_LIGHT, ("GATE_START", "CONV", "KERNEL_3", "OUT_IN", "GATE_END"), ("RELU",),
         tuple("CONV KERNEL_5 DILATE_2 DEPTHWISE OUT_IN POOL_MAX3 TANH".split()),
         tuple("RES_START CONV KERNEL_1 OUT_X2 GELU CONV KERNEL_3 OUT_IN ZERO_INIT RES_END NORM".split())]


def test_mixed_structures_score_as_they_do_one_by_one():
    # The same positions in the evaluation stream (so the same initial weights); the hall of
    # fame grows between single evaluations, so redundancy is left out of the comparison.
    together = _crucible(tasks=("xor", "temporal", "image"), steps=15).evaluate(MIXED)
    single = _crucible(tasks=("xor", "temporal", "image"), steps=15)
    alone = [single.evaluate([tokens])[0] for tokens in MIXED]
    for a, b in zip(together, alone, strict=True):
        assert a.tokens == b.tokens and a.stable == b.stable and a.params == b.params
        assert a.performance == pytest.approx(b.performance, abs=1e-6)
        assert a.fitness + 0.1 * a.redundancy == pytest.approx(b.fitness + 0.1 * b.redundancy, abs=1e-6)


def test_cache_sized_parts_change_nothing_but_the_calls(monkeypatch):
    sizes = _spy_group_sizes(monkeypatch)
    whole = _crucible(tasks=("temporal",), steps=5).evaluate(MIXED)
    sizes.clear()
    # temporal: 128 samples × 8 channels × 16 positions per candidate, so two candidates a part
    parted = _crucible(tasks=("temporal",), steps=5, chunk_elements=2 * 128 * 8 * 16).evaluate(MIXED)
    assert sizes == [[2], [1, 1], [1, 1]]  # RELU twice, then four structures
    assert [e.performance["temporal"] for e in parted] == pytest.approx(
        [e.performance["temporal"] for e in whole], abs=1e-6)


def test_fitness_terms_and_ordering():
    c = _crucible(steps=None)  # the tasks' own 100 steps
    relu, conv = c.evaluate([("RELU",), CONV_LIGHT])
    # Only a kernel wider than 1 along time beats chance on the temporal task.
    assert conv.performance["temporal"] > 0.5 > relu.performance["temporal"]
    assert relu.performance["xor"] > 0.8
    assert conv.params == pytest.approx((9 * 16 * 16 + 3 * 16 + 9 * 8 * 8 + 3 * 8) / 2)
    assert relu.params == 0 and relu.stable and conv.stable
    w = c.config.weights
    expected = (conv.mean_performance - w.param_weight * conv.params / w.param_scale + w.stability_bonus
                - w.redundancy_weight * conv.redundancy)
    assert conv.fitness == pytest.approx(expected)
    assert conv.fitness > relu.fitness


def test_deterministic_for_a_seed_and_seed_sensitive():
    cands = [("RELU",), CONV_LIGHT, ("GATE_START", "CONV", "KERNEL_3", "OUT_IN", "GATE_END")]
    a = _crucible(seed=3).evaluate(cands)
    b = _crucible(seed=3).evaluate(cands)
    assert a == b
    other = _crucible(seed=4).evaluate(cands)
    assert [e.fitness for e in other] != [e.fitness for e in a]


def test_latency_is_measured_once_per_structure():
    c = _crucible(weights=FitnessWeights(latency_weight=1.0), tasks=("xor",), steps=2)
    first, second = c.evaluate([CONV_LIGHT, CONV_LIGHT])
    assert first.latency_ms > 0 and first.latency_ms == second.latency_ms
    assert len(c._latency) == 1


def test_redundancy_against_the_hall_of_fame():
    c = _crucible(hall_of_fame=2)
    (first,) = c.evaluate([CONV_LIGHT])
    assert first.redundancy == 0.0  # empty hall of fame
    (again,) = c.evaluate([CONV_LIGHT])
    assert again.redundancy > 0.5  # the same design, trained from another initialisation
    c.evaluate([("RELU",), ("TANH",), ("BAD",)])
    fame = c.hall_of_fame.evaluations
    assert len(fame) == 2 and fame[0].fitness >= fame[1].fitness
    assert len({e.tokens for e in fame}) == 2


def test_linear_cka():
    x = torch.randn(1, 20, 5, generator=torch.Generator().manual_seed(0))
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(1)))
    same = linear_cka(x, torch.cat([x @ q * 3.0, torch.zeros(1, 20, 5)]))
    assert same[0, 0] == pytest.approx(1.0, abs=1e-5)  # invariant to rotation and scale
    assert same[0, 1] == 0.0  # a constant representation is similar to nothing
    hof = HallOfFame(3)
    assert hof.redundancy({"xor": x}).tolist() == [0.0]


def test_tasks_are_deterministic_and_named():
    assert list(installed_tasks()) == ["xor", "temporal", "image"]  # esper-blueprints-cnn's, in order
    for task in installed_tasks().values():
        a, b = task.make_data(5), task.make_data(5)
        assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_eval, b.y_eval)
        assert a.x_train.shape[1:] != () and a.y_train.max() < task.n_classes
    with pytest.raises(UnknownNameError, match="unknown crucible task 'xr'.*did you mean 'xor'"):
        get_tasks(("xr",))
