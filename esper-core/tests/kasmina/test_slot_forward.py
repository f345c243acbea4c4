import pytest
import torch
from kasmina_helpers import TinyHost, build_model, loss_fn, set_stage, toy_data

from esper_core.contracts import LifecycleSettings, SeedStage


def test_dormant_returns_same_object():
    model = build_model()
    slot = model.slot("p0")
    h = torch.randn(3, 8)
    assert slot(h) is h
    x, _ = toy_data(1)[0]
    assert torch.equal(model(x), model.host(x))


@pytest.mark.parametrize("stage", [SeedStage.GERMINATED, SeedStage.CULLED])
def test_inactive_stages_pass_through(stage):
    model = build_model()
    set_stage(model, "p0", SeedStage.GERMINATED)
    if stage is SeedStage.CULLED:
        model.cull("p0", epoch=0, reason="test")
    h = torch.randn(3, 8)
    assert model.slot("p0")(h) is h


def test_feedback_training_forward_is_the_host_itself():
    model = build_model()
    set_stage(model, "p0", SeedStage.TRAINING)
    h = torch.randn(3, 8)
    assert model.slot("p0")(h) is h


def test_straight_through_training_is_bit_exact_and_isolated():
    torch.manual_seed(1)
    model = build_model(lifecycle=LifecycleSettings(training_objective="straight_through"))
    x, y = toy_data(1)[0]
    plain = model(x)
    model.zero_grad()
    loss_fn(plain, y).backward()
    host_grads = [p.grad.clone() for p in model.host.parameters()]

    set_stage(model, "p0", SeedStage.TRAINING)
    with torch.no_grad():  # make the seed do something non-trivial
        for p in model.slot("p0").seed.parameters():
            p.normal_()
    model.zero_grad()
    out = model(x)
    assert torch.equal(out, plain)
    loss_fn(out, y).backward()
    seed_grads = [p.grad for p in model.slot("p0").seed.parameters()]
    assert all(g is not None for g in seed_grads)
    assert sum(g.abs().sum() for g in seed_grads) > 0
    # The host's gradients are exactly those of the host alone: nothing came via the seed.
    for before, p in zip(host_grads, model.host.parameters(), strict=True):
        assert torch.equal(before, p.grad)


@pytest.mark.parametrize("detach", [True, False])
def test_blending_formula_and_detach(detach):
    model = build_model(lifecycle=LifecycleSettings(detach_host_in_blending=detach))
    set_stage(model, "p1", SeedStage.BLENDING)
    slot = model.slot("p1")
    slot.alpha = 0.3
    h = torch.randn(5, 8, requires_grad=True)
    out = slot(h)
    s = slot.seed(h)
    assert torch.allclose(out, h + 0.3 * (s - h), atol=1e-6)
    (g,) = torch.autograd.grad(out.sum(), h)
    if detach:
        assert torch.allclose(g, torch.full_like(g, 0.7))  # only the host's (1 − α) path
    else:
        assert not torch.allclose(g, torch.full_like(g, 0.7))


def test_fossilized_is_seed_of_host_with_gradient_to_host():
    model = build_model()
    set_stage(model, "p0", SeedStage.FOSSILIZED)
    slot = model.slot("p0")
    h = torch.randn(4, 8, requires_grad=True)
    out = slot(h)
    assert torch.equal(out, slot.seed(h))
    (g,) = torch.autograd.grad(out.sum(), h)
    assert not torch.allclose(g, torch.ones_like(g))


def test_force_alpha_restores_and_validates():
    model = build_model()
    set_stage(model, "p0", SeedStage.BLENDING)
    slot = model.slot("p0")
    slot.alpha = 0.5
    h = torch.randn(2, 8)
    with model.force_alpha("p0", 0.0):
        assert slot(h) is h
    with model.force_alpha("p0", 1.0):
        assert torch.equal(slot(h), slot.seed(h.detach()))
    assert slot.forced_alpha is None
    with pytest.raises(ValueError), model.force_alpha("p0", 1.5):
        pass


def test_slot_records_last_shape():
    model = build_model(TinyHost(3))
    x, _ = toy_data(1)[0]
    model(x)
    assert tuple(model.slot("p2").state.last_shape) == (16, 8)
