"""Novelty that counts (#28): the catalog seeds the hall of fame, so rediscovering a catalog
blueprint is redundant and not novel; searches report distinct valid structures and the best
novel blueprint apart from the best overall."""

from __future__ import annotations

import pytest

from esper_core.discovery.crucible import Crucible, CrucibleConfig, FitnessWeights
from esper_core.discovery.installed import installed_catalog
from esper_core.discovery.search import run_search
from esper_core.errors import ConfigError

QUIET = FitnessWeights(latency_weight=0.0)
SPECS = {s.name: s.tokens for s in installed_catalog().blueprints.for_topology("cnn") if s.tokens}
CATALOG = list(SPECS.values())
NOVEL = tuple("CONV KERNEL_5 OUT_X2 SIGMOID CONV KERNEL_1 OUT_IN".split())
# The catalog's attention block with a wider squeeze: CKA ≈ 0.96 to a catalog blueprint.
NEAR_ATTENTION = tuple("GATE_START POOL_GLOBAL LINEAR OUT_D2 RELU LINEAR OUT_IN ZERO_INIT GATE_END".split())


class Proposes:
    """A generator that proposes the given batches, in order."""

    def __init__(self, *batches):
        self.batches = list(batches)

    def propose(self, n):
        return self.batches.pop(0)[:n]

    def observe(self, candidates, evaluations):
        return {}


def _crucible(**kw):
    return Crucible(CrucibleConfig(tasks=("xor", "temporal"), steps=30, weights=QUIET, **kw))


def test_a_generator_proposing_a_catalog_blueprint_finds_it_redundant_and_not_novel():
    crucible = _crucible()
    seeded = crucible.seed_catalog(CATALOG)
    assert [e.tokens for e in seeded] == CATALOG and all(e.valid for e in seeded)
    assert crucible.evaluated == 0  # the catalog costs no budget
    result = run_search(Proposes([SPECS["depthwise"], NOVEL, ("BAD",), NOVEL]), crucible, budget=4, batch_size=4)
    copy, novel, bad, _ = result.evaluations
    assert copy.redundancy == copy.catalog_similarity == 1.0 and not copy.novel
    assert novel.novel and novel.catalog_similarity < 0.95 and not bad.novel
    assert result.best_novel == max((novel, result.evaluations[3]), key=lambda e: e.fitness)
    assert result.distinct_valid == 2
    # catalog blueprints are references, never hall-of-fame entries of the search
    assert {e.tokens for e in result.hall_of_fame} == {SPECS["depthwise"], NOVEL}


def test_without_the_catalog_the_same_copy_counts_as_novel_and_trains_the_same():
    proposals = [SPECS["depthwise"], NOVEL]
    seeded = _crucible()
    seeded.seed_catalog(CATALOG)
    with_catalog = seeded.evaluate(proposals)
    without = _crucible().evaluate(proposals)
    assert without[0].novel and without[0].redundancy == 0.0 and not with_catalog[0].novel
    # seeding takes initial weights of its own: the search's candidates train exactly as before
    assert [e.performance for e in with_catalog] == [e.performance for e in without]
    w = QUIET
    assert with_catalog[0].fitness == pytest.approx(without[0].fitness - w.redundancy_weight * 1.0)


def test_the_novelty_radius_is_a_cka_threshold():
    default = _crucible()
    default.seed_catalog(CATALOG)
    (near,) = default.evaluate([NEAR_ATTENTION])
    assert 0.95 <= near.catalog_similarity < 0.99 and not near.novel
    wide = _crucible(novelty_radius=0.99)
    wide.seed_catalog(CATALOG)
    (again,) = wide.evaluate([NEAR_ATTENTION])
    assert again.novel and again.catalog_similarity == pytest.approx(near.catalog_similarity)
    result = run_search(Proposes([NEAR_ATTENTION]), default, budget=1, batch_size=1)
    assert result.best_novel is None and result.distinct_valid == 1


def test_distinct_valid_counts_each_compiling_sequence_once():
    result = run_search(Proposes([("RELU",), ("RELU",), ("BAD",), ("TANH",), ("RELU",), ("LINEAR", "OUT_IN")]),
                        _crucible(), budget=6, batch_size=6)
    assert result.distinct_valid == 2  # RELU and TANH; BAD and a LINEAR on spatial features do not compile


def test_a_catalog_form_the_curriculum_cannot_build_still_counts_for_identity():
    crucible = _crucible()
    # LINEAR on the spatial slot does not compile, but the same tokens are still the catalog's
    assert crucible.seed_catalog([("LINEAR", "OUT_IN"), ("RELU",)])[0].tokens == ("RELU",)
    assert crucible.hall_of_fame.catalog_tokens == {("LINEAR", "OUT_IN"), ("RELU",)}
    (relu,) = crucible.evaluate([("RELU",)])
    assert relu.redundancy == 1.0 and not relu.novel


@pytest.mark.parametrize("radius", [-0.1, 1.5])
def test_the_radius_must_be_a_similarity(radius):
    with pytest.raises((ConfigError, ValueError), match="novelty_radius"):
        CrucibleConfig(novelty_radius=radius)
