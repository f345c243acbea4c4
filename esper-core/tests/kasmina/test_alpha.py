import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esper_core.errors import ConfigError
from esper_core.kasmina.alpha import cosine_schedule, linear_schedule, tanh_schedule

FACTORIES = [tanh_schedule, linear_schedule, cosine_schedule]


@pytest.mark.parametrize("factory", FACTORIES)
def test_endpoints(factory):
    sched = factory(total_epochs=5, temperature=1.0)
    assert sched(0) == 0.0 and sched(-3) == 0.0
    assert sched(5) == 1.0 and sched(9) == 1.0


@pytest.mark.parametrize("factory", FACTORIES)
@given(t=st.integers(1, 20), temp=st.floats(0.0, 5.0), a=st.floats(-5, 30), b=st.floats(-5, 30))
def test_monotone_and_bounded(factory, t, temp, a, b):
    sched = factory(total_epochs=t, temperature=temp)
    lo, hi = sorted((a, b))
    assert 0.0 <= sched(lo) <= sched(hi) <= 1.0


def test_tanh_formula_inside():
    sched = tanh_schedule(total_epochs=5, temperature=1.0)
    for k in (1, 2, 2.5, 3, 4):
        assert sched(k) == pytest.approx(0.5 * (1 + math.tanh(0.5 * (k - 2.5))))
    assert sched(2.5) == pytest.approx(0.5)


def test_tanh_small_temperature_is_a_switch_at_half():
    for temp in (0.0, 1e-9, 1e-3):
        sched = tanh_schedule(total_epochs=6, temperature=temp)
        assert sched(2.9) == pytest.approx(0.0, abs=1e-12)
        assert sched(3) == pytest.approx(0.5)
        assert sched(3.1) == pytest.approx(1.0, abs=1e-12)


def test_linear_and_cosine_values():
    assert linear_schedule(total_epochs=4)(1) == 0.25
    assert cosine_schedule(total_epochs=4)(2) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs", [{"total_epochs": 0}, {"total_epochs": 2.5}, {"temperature": -1.0}])
def test_bad_options(kwargs):
    with pytest.raises(ConfigError):
        tanh_schedule(**kwargs)


def test_lazy_catalog_references_resolve():
    from esper_core.builtin.plugin import esper_register_alpha_schedules

    for spec in esper_register_alpha_schedules():
        sched = spec.factory(total_epochs=3, temperature=0.5)
        assert sched(0) == 0.0 and sched(3) == 1.0
