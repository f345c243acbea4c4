"""Random programs, mutation, aging evolution and the shared budget accounting."""

from __future__ import annotations

import itertools
import random

import pytest

from esper_core.discovery.crucible import Crucible, CrucibleConfig, Evaluation, FitnessWeights
from esper_core.discovery.grammar import MAX_TOKENS, parse
from esper_core.discovery.search import RandomSearch, RegularizedEvolution, mutate, random_program, run_search


def test_random_programs_and_mutations_always_parse():
    rng = random.Random(0)
    for _ in range(300):
        tokens = random_program(rng)
        assert len(tokens) <= MAX_TOKENS
        parse(tokens)
        child = mutate(tokens, rng)
        assert child != tokens and len(child) <= MAX_TOKENS
        parse(child)
    assert len(mutate(("NOT", "A", "PROGRAM"), rng)) >= 1  # unparseable parent: a fresh program


def _ev(tokens, fitness):
    return Evaluation(tokens=tokens, fitness=fitness, valid=True)


def test_aging_evolution_removes_the_oldest_not_the_worst():
    evo = RegularizedEvolution(seed=0, population=3, sample=2)
    first = evo.propose(3)  # the population fills with random programs first
    evo.observe(first, [_ev(first[0], 9.0), _ev(first[1], 0.0), _ev(first[2], 1.0)])
    children = evo.propose(2)
    assert all(parse(c) for c in children)
    evo.observe(children, [_ev(c, -1.0) for c in children])
    kept = [t for t, _ in evo.population]
    assert first[0] not in kept and first[1] not in kept  # the best one aged out too
    assert kept == [first[2], *children]
    with pytest.raises(ValueError, match="population ≥ 2"):
        RegularizedEvolution(population=1)


def test_tournament_picks_the_fittest_parent(monkeypatch):
    from esper_core.discovery import search

    parents = []
    monkeypatch.setattr(search, "mutate", lambda tokens, rng: parents.append(tokens) or ("RELU",))
    evo = RegularizedEvolution(seed=1, population=4, sample=4)
    pop = [("RELU",), ("TANH",), ("GELU",), ("SILU",)]
    evo.observe(pop, [_ev(t, f) for t, f in zip(pop, (0.0, 5.0, 1.0, 2.0), strict=True)])
    evo.propose(5)
    assert parents == [("TANH",)] * 5  # a tournament over the whole population: the fittest


def test_run_search_spends_exactly_the_budget():
    crucible = Crucible(CrucibleConfig(tasks=("xor",), steps=3, weights=FitnessWeights(latency_weight=0.0)))
    steps = []
    result = run_search(RandomSearch(seed=0), crucible, budget=10, batch_size=4, on_step=steps.append)
    assert [s.evaluated for s in steps] == [4, 8, 10]
    assert len(result.evaluations) == 10 == crucible.evaluated
    assert steps[-1].best == max(e.fitness for e in result.evaluations) == result.best.fitness
    assert all(a.best <= b.best for a, b in itertools.pairwise(steps))
    with pytest.raises(ValueError, match="budget and batch size"):
        run_search(RandomSearch(), crucible, budget=0, batch_size=1)
