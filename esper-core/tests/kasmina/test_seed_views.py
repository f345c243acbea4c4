"""``MorphogeneticModel.seed_views()``: the read-only seed records observers read instead of the
engine's private slot state."""

from __future__ import annotations

import attrs
import pytest
from kasmina_helpers import build_model, set_stage

from esper_core.contracts.seeds import ObservedModel, SeedView
from esper_core.contracts.stages import SeedStage


def test_views_follow_the_slots_and_their_seeds() -> None:
    model = build_model()
    assert isinstance(model, ObservedModel)
    assert [(v.slot, v.stage, v.blueprint, v.parameters) for v in model.seed_views()] == [
        ("p0", SeedStage.DORMANT, None, ()), ("p1", SeedStage.DORMANT, None, ())]

    set_stage(model, "p1", SeedStage.BLENDING)
    model.slot("p1").state.last_grad_norm = 0.25
    view = model.seed_views()[1]
    assert (view.slot, view.stage, view.blueprint, view.live) == ("p1", SeedStage.BLENDING, "cnn:lin", True)
    assert view.last_grad_norm == 0.25 and view.alpha == model.effective_alpha(model.slot("p1"))
    seed_params = model.seed_parameters("p1")
    assert len(view.parameters) == len(seed_params) > 0
    assert all(a is b for a, b in zip(view.parameters, seed_params, strict=True))


def test_a_view_is_read_only_and_a_snapshot() -> None:
    model = build_model()
    set_stage(model, "p0", SeedStage.TRAINING)
    view = model.seed_views()[0]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        view.last_grad_norm = 1.0  # type: ignore[misc]
    model.slot("p0").state.last_grad_norm = 3.0
    assert view.last_grad_norm is None and model.seed_views()[0].last_grad_norm == 3.0


def test_fossilized_seeds_are_not_live_and_expose_no_parameters() -> None:
    model = build_model()
    set_stage(model, "p0", SeedStage.FOSSILIZED)
    view = model.seed_views()[0]
    assert isinstance(view, SeedView)
    assert (view.live, view.alpha, view.parameters) == (False, 1.0, ())
