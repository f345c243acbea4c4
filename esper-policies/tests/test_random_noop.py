import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_testkit import KEYS, context, mask, report

from esper_core.contracts import ActionMask, Op, Policy
from esper_core.errors import ConfigError
from esper_policies.noop import NoopPolicy
from esper_policies.random_policy import RandomPolicy


@st.composite
def masks(draw):
    n_slots = draw(st.integers(1, 4))
    n_keys = draw(st.integers(0, 4))
    keys = tuple(f"cnn:bp{i}" for i in range(n_keys))
    rows = draw(st.lists(st.lists(st.booleans(), min_size=n_slots, max_size=n_slots),
                         min_size=len(Op), max_size=len(Op)))
    allowed = draw(st.lists(st.booleans(), min_size=n_keys, max_size=n_keys))
    return ActionMask(slots=rows, blueprints=allowed, blueprint_keys=keys)


@settings(max_examples=200, deadline=None)
@given(masks(), st.integers(0, 2**32), st.integers(0, 5))
def test_random_policy_only_returns_allowed_decisions(m, seed, episode):
    p = RandomPolicy(seed=seed)
    p.reset(episode=episode)
    for epoch in range(1, 9):
        d = p.decide(report=report(epoch, 50.0), mask=m)
        assert m.allows(d), (d, m)
        assert 0.0 < d.confidence <= 1.0


def test_random_policy_never_germinates_without_an_allowed_blueprint():
    m = mask(2, germinate=[0, 1], blueprints=[])
    p = RandomPolicy(seed=3)
    assert {p.decide(report=report(1, 50.0), mask=m).op for _ in range(50)} == {Op.WAIT}


def test_random_policy_samples_every_allowed_op_slot_and_blueprint_uniformly():
    m = mask(2, germinate=[0, 1], advance=[1], cull=[0, 1], fossilize=[0])
    p = RandomPolicy(seed=11)
    draws = [p.decide(report=report(1, 50.0), mask=m) for _ in range(4000)]
    ops = collections.Counter(d.op for d in draws)
    assert set(ops) == set(Op)
    assert all(700 < n < 900 for n in ops.values())  # 800 expected each
    germs = collections.Counter((d.slot, d.blueprint) for d in draws if d.op is Op.GERMINATE)
    assert set(germs) == {(s, k) for s in (0, 1) for k in KEYS}
    germ = next(d for d in draws if d.op is Op.GERMINATE)
    assert germ.confidence == pytest.approx(1 / 5 / 2 / 3)
    assert "random: drew GERMINATE among 5 allowed ops after epoch 1; slot" in germ.reason


def decisions(p, n=30):
    m = mask(3, germinate=[0, 1, 2], cull=[1], fossilize=[2])
    return [p.decide(report=report(e, 50.0), mask=m).describe() for e in range(1, n + 1)]


def test_random_policy_is_deterministic_per_seed_and_episode():
    a, b = RandomPolicy(seed=5), RandomPolicy(seed=5)
    assert decisions(a) == decisions(b)
    assert decisions(RandomPolicy(seed=6)) != decisions(RandomPolicy(seed=5))
    c = RandomPolicy(seed=5)
    c.reset(episode=1)
    ep1 = decisions(c)
    assert ep1 != decisions(RandomPolicy(seed=5))
    c.reset(episode=1)
    assert decisions(c) == ep1


def test_random_policy_from_context_uses_the_seed_and_rejects_options():
    p = RandomPolicy.from_context(context=context(seed=5))
    assert isinstance(p, Policy) and p.name == "random"
    assert decisions(p) == decisions(RandomPolicy(seed=5))
    with pytest.raises(ConfigError, match="policy 'random': unknown option 'temperature'; allowed options: none"):
        RandomPolicy.from_context(context=context({"temperature": 1.0}))


def test_noop_always_waits():
    p = NoopPolicy.from_context(context=context())
    assert isinstance(p, Policy) and p.name == "noop"
    p.reset(episode=3)
    m = mask(2, germinate=[0, 1], cull=[0])
    for epoch in range(1, 20):
        d = p.decide(report=report(epoch, 50.0), mask=m)
        assert d.op is Op.WAIT and d.reason == "noop policy never germinates"
    with pytest.raises(ConfigError, match="policy 'noop': unknown option 'x'; allowed options: none"):
        NoopPolicy.from_context(context=context({"x": 1}))
