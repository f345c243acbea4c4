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
    monkeypatch.setattr(crucible, "train_batched", lambda *a, **k: calls.append(a) or batched.train_batched(*a, **k))
    c = _crucible()
    (ev,) = c.evaluate([("LINEAR", "KERNEL_5", "OUT_IN")])
    assert ev.fitness == -1.0 and not ev.valid
    assert ev.reason == "xor slot (16, 1, 1): token 1: KERNEL_5: a kernel size applies to CONV, not LINEAR"
    assert calls == []


def test_same_structures_train_together_in_one_call_per_task(monkeypatch):
    sizes = []

    def spy(models, *a, **k):
        sizes.append(len(models))
        return batched.train_batched(models, *a, **k)

    monkeypatch.setattr(crucible, "train_batched", spy)
    c = _crucible()
    evs = c.evaluate([("RELU",), CONV_LIGHT, ("RELU",), ("BAD",), CONV_LIGHT, ("RELU",)])
    assert sorted(sizes) == [2, 2, 3, 3]  # two structures × two tasks
    assert [e.valid for e in evs] == [True, True, True, False, True, True]
    assert [e.tokens for e in evs][:3] == [("RELU",), CONV_LIGHT, ("RELU",)]


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
