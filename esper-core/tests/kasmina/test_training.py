import copy
import math

import pytest
import torch
from kasmina_helpers import TinyHost, build_model, linear_blueprint, loss_fn, set_stage, toy_data
from torch import nn

from esper_core.contracts import GovernorRollback, LifecycleSettings, SeedStage
from esper_core.errors import ConfigError
from esper_core.kasmina import SafetyGovernor, SeedTrainer

S = SeedStage


class Flaky(nn.Module):
    """A residual linear seed that turns hostile when ``armed``: NaN or ×1e30 per call."""

    def __init__(self, width: int, mode: str) -> None:
        super().__init__()
        self.lin = nn.Linear(width, width)
        self.mode = mode
        self.armed = False
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x + self.lin(x)
        if not self.armed:
            return out
        self.calls += 1
        if self.mode == "nan":
            return out * float("nan")
        return out * (1e30 ** self.calls)  # explodes, reaching inf on the second call


def _flaky_model(mode, stage, **kw):
    model = build_model(TinyHost(2, norm=True), **kw)
    set_stage(model, "p1", stage, blueprint=linear_blueprint(factory=lambda *, width: Flaky(width, mode)))
    model.slot("p1").alpha = 0.5
    return model


def _state(model, trainer):
    return (copy.deepcopy(model.host.state_dict()),
            copy.deepcopy(trainer.host_optimizer.state_dict()))


def _assert_same(a, b):
    (ma, oa), (mb, ob) = a, b
    assert ma.keys() == mb.keys()
    for k in ma:
        assert torch.equal(ma[k], mb[k]), k
    assert oa["state"].keys() == ob["state"].keys()
    for idx in oa["state"]:
        for key, value in oa["state"][idx].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(ob["state"][idx][key])), (idx, key)


@pytest.mark.parametrize("mode,stage", [("nan", S.TRAINING), ("explode", S.BLENDING),
                                        ("explode", S.TRAINING), ("nan", S.BLENDING)])
def test_governor_restores_bit_identical_and_training_continues(mode, stage, events):
    model = _flaky_model(mode, stage, events=events)
    trainer = SeedTrainer(model, host_lr=1e-2, seed_lr=1e-2, governor=SafetyGovernor(model))
    data = toy_data(3)
    first = trainer.train_epoch(data, loss_fn, epoch=1)  # creates optimizer state
    assert first.steps == 3 and not first.rollbacks
    before = _state(model, trainer)
    model.slot("p1").seed.armed = True
    hostile = trainer.train_epoch(data[:1] if mode == "nan" else data[:2], loss_fn, epoch=2)
    assert len(hostile.rollbacks) == 1
    event = hostile.rollbacks[0]
    assert isinstance(event, GovernorRollback) and event.slot == "p1" and event.epoch == 2
    assert any(isinstance(e, GovernorRollback) for e in events)
    assert model.slot("p1").stage is S.CULLED and "p1" not in trainer.seed_optimizers
    if mode == "nan":
        _assert_same(_state(model, trainer), before)
    for p in [*model.parameters(), *model.buffers()]:
        assert torch.isfinite(p.float()).all()
    after = trainer.train_epoch(data, loss_fn, epoch=3)
    assert after.steps == 3 and math.isfinite(after.loss) and not after.rollbacks
    assert trainer.governor.rollback_count == 1


def test_explosion_rollback_is_bit_identical():
    model = _flaky_model("explode", S.BLENDING)
    trainer = SeedTrainer(model, host_lr=1e-2, seed_lr=1e-2, governor=SafetyGovernor(model))
    data = toy_data(2)
    trainer.train_epoch(data, loss_fn, epoch=1)
    before = _state(model, trainer)
    model.slot("p1").seed.armed = True
    stats = trainer.train_epoch(data[:1], loss_fn, epoch=2)
    assert stats.steps == 0 and len(stats.rollbacks) == 1
    _assert_same(_state(model, trainer), before)


def test_non_finite_parameter_after_step_rolls_back():
    model = build_model()
    trainer = SeedTrainer(model, host_lr=1e-2, seed_lr=1e-2, optimizer="sgd",
                          governor=SafetyGovernor(model))
    data = toy_data(1)
    trainer.train_epoch(data, loss_fn, epoch=1)
    before = _state(model, trainer)
    for group in trainer.host_optimizer.param_groups:
        group["lr"] = 1e38  # finite gradients, but the step overflows the weights
    stats = trainer.train_epoch(data, loss_fn, epoch=2)
    assert stats.steps == 0 and len(stats.rollbacks) == 1 and stats.rollbacks[0].slot is None
    _assert_same(_state(model, trainer), before)


def test_training_seed_leaves_host_trajectory_unchanged():
    torch.manual_seed(0)
    plain = build_model()
    seeded = copy.deepcopy(plain)
    set_stage(seeded, "p0", S.TRAINING)
    data = toy_data(4)
    t_plain = SeedTrainer(plain, host_lr=1e-2, seed_lr=1e-2)
    t_seeded = SeedTrainer(seeded, host_lr=1e-2, seed_lr=1e-2, governor=SafetyGovernor(seeded))
    seed_before = [p.clone() for p in seeded.seed_parameters("p0")]
    a = t_plain.train_epoch(data, loss_fn, epoch=1)
    b = t_seeded.train_epoch(data, loss_fn, epoch=1)
    assert a.loss == b.loss
    for p, q in zip(plain.host.parameters(), seeded.host.parameters(), strict=True):
        assert torch.equal(p, q)
    assert any(not torch.equal(x, y) for x, y in zip(seed_before, seeded.seed_parameters("p0"), strict=True))
    slot = seeded.slot("p0")
    assert slot.state.gradient.steps == 4 and slot.state.gradient.value > 0
    assert seeded.slot_reports()[0].gradient_ratio == slot.state.gradient.value


def test_germinated_seed_is_not_trained_and_optimizers_follow_lifecycle():
    model = build_model()
    trainer = SeedTrainer(model, host_lr=1e-2, seed_lr=1e-3, optimizer="sgd")
    assert trainer.seed_optimizers == {}
    set_stage(model, "p0", S.GERMINATED)
    before = [p.clone() for p in model.seed_parameters("p0")]
    trainer.train_epoch(toy_data(2), loss_fn, epoch=1)
    assert "p0" in trainer.seed_optimizers
    assert all(torch.equal(a, b) for a, b in zip(before, model.seed_parameters("p0"), strict=True))
    # → PROBATIONARY, train (optimizer state appears), then fossilize: params join the host.
    set_stage(model, "p0", S.PROBATIONARY)
    model.slot("p0").alpha = 1.0
    trainer.train_epoch(toy_data(2), loss_fn, epoch=2)
    seed_params = model.seed_parameters("p0")
    momentum = trainer.seed_optimizers["p0"].state[seed_params[0]]["momentum_buffer"]
    model._transition(model.slot("p0"), S.FOSSILIZED, epoch=2, reason="test")
    trainer.sync()
    assert "p0" not in trainer.seed_optimizers
    assert len(trainer.host_optimizer.param_groups) == 2
    assert trainer.host_optimizer.state[seed_params[0]]["momentum_buffer"] is momentum
    trainer.train_epoch(toy_data(2), loss_fn, epoch=3)
    assert not torch.equal(momentum, torch.zeros_like(momentum))
    # A new seed elsewhere gets its own optimizer; culling drops it.
    set_stage(model, "p1", S.TRAINING)
    trainer.sync()
    assert "p1" in trainer.seed_optimizers
    model.cull("p1", epoch=3, reason="test")
    trainer.sync()
    assert "p1" not in trainer.seed_optimizers


def test_trainer_rejects_bad_options():
    model = build_model()
    with pytest.raises(ConfigError, match="adamw, sgd"):
        SeedTrainer(model, host_lr=0.1, seed_lr=0.1, optimizer="lion")
    with pytest.raises(ConfigError, match="seed_lr"):
        SeedTrainer(model, host_lr=0.1, seed_lr=-1.0)


def test_governor_rollback_without_seed_culls_nothing():
    model = build_model()
    trainer = SeedTrainer(model, host_lr=1e-2, seed_lr=1e-2, governor=SafetyGovernor(model))
    x, y = toy_data(1)[0]
    stats = trainer.train_epoch([(x * float("nan"), y)], loss_fn, epoch=1)
    assert stats.steps == 0 and stats.rollbacks[0].slot is None
    assert math.isnan(stats.loss)


def test_last_seed_gradient_norm_is_kept_after_the_epoch():
    torch.manual_seed(0)
    model = build_model()
    set_stage(model, "p0", S.TRAINING)
    trainer = SeedTrainer(model, host_lr=1e-2, seed_lr=1e-2, governor=SafetyGovernor(model))
    assert model.slot("p0").state.last_grad_norm is None
    trainer.train_epoch(toy_data(3), loss_fn, epoch=1)
    norm = model.slot("p0").state.last_grad_norm
    assert norm is not None and norm > 0 and math.isfinite(norm)
    assert all(p.grad is None for p in model.seed_parameters("p0"))  # gradients were released


@pytest.mark.parametrize("objective", ["feedback", "straight_through"])
def test_training_seed_never_touches_host_weights_grads_or_statistics(objective):
    # A host with BatchNorm downstream of the slot: the feedback pass runs through it in train
    # mode, and its running statistics must stay the host's own.
    torch.manual_seed(0)
    host = TinyHost(3, norm=True)
    reference = copy.deepcopy(host)
    model = build_model(host, lifecycle=LifecycleSettings(training_objective=objective))
    set_stage(model, "p0", SeedStage.TRAINING)
    with torch.no_grad():
        for p in model.slot("p0").seed.parameters():
            p.normal_(0, 0.5)
    seed_before = [p.detach().clone() for p in model.slot("p0").seed.parameters()]
    data = toy_data(4)
    SeedTrainer(model, host_lr=0.01, seed_lr=0.01).train_epoch(data, loss_fn, epoch=1)
    plain = build_model(reference)
    SeedTrainer(plain, host_lr=0.01, seed_lr=0.01).train_epoch(data, loss_fn, epoch=1)
    for a, b in zip(model.host.state_dict().values(), plain.host.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    seed_after = list(model.slot("p0").seed.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(seed_before, seed_after, strict=True))
    stats = model.slot("p0").seed_path_stats
    if objective == "straight_through":
        assert stats is None
    else:
        # The seed-on path kept statistics of its own, for both downstream BatchNorms.
        own = dict(stats.named_buffers())
        assert set(own) == {f"n{i}_{b}" for i in (0, 1)
                            for b in ("running_mean", "running_var", "num_batches_tracked")}
        host_mean = model.downstream_norms(model.slot("p0"))[0].running_mean
        assert not torch.equal(own["n0_running_mean"], host_mean)
        with model.seed_path_statistics(model.slot("p0")):
            assert model.downstream_norms(model.slot("p0"))[0].running_mean is own["n0_running_mean"]
        assert model.downstream_norms(model.slot("p0"))[0].running_mean is host_mean
        set_stage(model, "p0", SeedStage.BLENDING)  # leaving TRAINING drops them
        assert model.slot("p0").seed_path_stats is None


def test_feedback_seed_learns_to_lower_the_loss_of_the_model_it_joins():
    # Host frozen (lr 0): only the seed learns, from the loss with it switched in.
    torch.manual_seed(0)
    model = build_model(TinyHost(2), lifecycle=LifecycleSettings(training_objective="feedback"))
    set_stage(model, "p0", SeedStage.TRAINING)
    data = toy_data(8, batch=32)

    def switched_in_loss() -> float:
        with torch.no_grad(), model.force_alpha("p0", 1.0):
            return sum(float(loss_fn(model(x), y)) for x, y in data) / len(data)

    before = switched_in_loss()
    trainer = SeedTrainer(model, host_lr=0.0, seed_lr=0.01)
    for epoch in range(1, 21):
        trainer.train_epoch(data, loss_fn, epoch=epoch)
    assert switched_in_loss() < before - 0.05
