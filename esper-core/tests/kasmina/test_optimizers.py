"""Esper's fused optimizers: torch's updates bit for bit, torch's formats and hooks, and no
``torch._dynamo`` import on the way."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from kasmina_helpers import build_model
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from esper_core.kasmina import SeedTrainer
from esper_core.kasmina.optimizers import FusedAdam, FusedAdamW, FusedSGD, adam, sgd


def _trajectory(make, steps: int = 7):
    """Train a small conv net, add a parameter group after step 2 (as a fossilizing seed does)
    and cut the first group's lr at step 4 (as the schedule does); final parameters + optimizer."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 2))
    late = nn.Linear(2, 2)
    opt = make(list(net.parameters()))
    for step in range(steps):
        torch.manual_seed(100 + step)
        out = net(torch.randn(5, 3, 8, 8))
        loss = (late(out) if step >= 3 else out).square().mean()
        opt.zero_grad()
        loss.backward()
        if step == 2:
            opt.add_param_group({"params": list(late.parameters()), "lr": 0.3})
        if step == 4:
            opt.param_groups[0]["lr"] *= 0.1
        opt.step()
    return [p.detach().clone() for p in [*net.parameters(), *late.parameters()]], opt


def _same_state(a, b) -> bool:
    if a["param_groups"] != b["param_groups"] or a["state"].keys() != b["state"].keys():
        return False
    return all(torch.equal(torch.as_tensor(a["state"][i][k]), torch.as_tensor(b["state"][i][k]))
               for i in a["state"] for k in a["state"][i])


PAIRS = {
    "adam": (lambda ps: FusedAdam(ps, lr=0.01, weight_decay=0.1, eps=1e-5),
             lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1, eps=1e-5, fused=True)),
    "adam-decoupled": (lambda ps: FusedAdam(ps, lr=0.01, weight_decay=0.1,
                                            decoupled_weight_decay=True),
                       lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1,
                                                   decoupled_weight_decay=True, fused=True)),
    "adamw": (lambda ps: FusedAdamW(ps, lr=0.01, weight_decay=0.1),
              lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1, fused=True)),
    "sgd": (lambda ps: FusedSGD(ps, lr=0.01, momentum=0.9, weight_decay=0.1),
            lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=0.1, fused=True)),
    "sgd-nesterov": (lambda ps: FusedSGD(ps, lr=0.01, momentum=0.9, nesterov=True),
                     lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True, fused=True)),
    "sgd-no-momentum": (lambda ps: FusedSGD(ps, lr=0.05),
                        lambda ps: torch.optim.SGD(ps, lr=0.05, fused=True)),
}


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_updates_and_state_match_torch_fused_bit_for_bit(kind):
    ours, theirs = PAIRS[kind]
    params_a, opt_a = _trajectory(ours)
    params_b, opt_b = _trajectory(theirs)
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b, strict=True))
    assert _same_state(opt_a.state_dict(), opt_b.state_dict())
    assert isinstance(opt_a, type(opt_b))


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_state_dicts_load_across_torch_and_ours(kind):
    ours, theirs = PAIRS[kind]
    _, trained = _trajectory(theirs, steps=5)
    first, second = (g["params"] for g in trained.param_groups)

    def fresh(make):
        opt = make(first)
        opt.add_param_group({"params": second})
        return opt

    mine = fresh(ours)
    mine.load_state_dict(trained.state_dict())
    assert _same_state(mine.state_dict(), trained.state_dict())
    back = fresh(theirs)
    back.load_state_dict(mine.state_dict())
    assert _same_state(back.state_dict(), trained.state_dict())


def test_a_parameter_that_joins_late_starts_its_momentum_like_torch():
    # One group; the second parameter gets a gradient only from step 2, when the first already
    # has a momentum buffer (torch's fused SGD cannot take that mix: compare with its default).
    def run(make):
        torch.manual_seed(0)
        a, b = nn.Parameter(torch.randn(4)), nn.Parameter(torch.randn(4))
        opt = make([a, b])
        for step in range(4):
            opt.zero_grad()
            ((a * a).sum() + (b.sum() if step >= 2 else 0)).backward()
            opt.step()
        return a.detach(), b.detach(), opt.state[b]["momentum_buffer"]

    ours = run(lambda ps: FusedSGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01))
    reference = run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01))
    for x, y in zip(ours, reference, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("option", ["amsgrad", "maximize"])
def test_options_the_fused_step_does_not_cover_are_refused(option):
    p = nn.Parameter(torch.ones(2))
    opt = FusedAdamW([p], lr=0.1, **{option: True})
    p.grad = torch.ones(2)
    with pytest.raises(ValueError, match=f"FusedAdamW does not take {option}=True"):
        opt.step()
    sgd = FusedSGD([p], lr=0.1, momentum=0.9)
    sgd.param_groups[0]["lr"] = torch.tensor(0.1)
    with pytest.raises(ValueError, match="float learning rate"):
        sgd.step()


def test_sparse_gradients_are_refused():
    emb = nn.Embedding(5, 2, sparse=True)
    opt = FusedSGD(emb.parameters(), lr=0.1)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(ValueError, match="sparse gradients"):
        opt.step()


def test_closure_is_evaluated_with_gradients_and_its_loss_returned():
    p = nn.Parameter(torch.tensor([2.0]))
    opt = FusedAdamW([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 4.0 and p.item() < 2.0


def test_step_hooks_run_once_per_step_local_and_global():
    p = nn.Parameter(torch.ones(2))
    opt = FusedAdamW([p], lr=0.1)
    calls = []
    local = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    post = opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    shared = register_optimizer_step_pre_hook(lambda o, args, kwargs: calls.append(type(o).__name__))
    try:
        p.grad = torch.ones(2)
        opt.step()
        opt.step()
    finally:
        local.remove(), post.remove(), shared.remove()
    assert calls == ["FusedAdamW", "pre", "post"] * 2


def test_trainer_uses_them_where_fused_kernels_apply():
    model = build_model()
    adamw = SeedTrainer(model, host_lr=1e-2, seed_lr=1e-2)
    assert type(adamw.host_optimizer) is FusedAdamW
    sgd = SeedTrainer(model, host_lr=1e-2, seed_lr=1e-2, optimizer="sgd")
    assert type(sgd.host_optimizer) is FusedSGD
    integer = nn.Parameter(torch.zeros(2, dtype=torch.int64), requires_grad=False)
    assert type(adamw._make([integer], 0.1)) is torch.optim.AdamW


def test_factories_pick_the_fused_classes_only_where_the_kernels_apply():
    weights = nn.Linear(3, 2)
    assert type(adam(weights.parameters(), lr=0.1)) is FusedAdam
    assert type(adam(weights.parameters(), lr=0.1, decoupled=True)) is FusedAdamW
    assert type(sgd(weights.parameters(), lr=0.1, momentum=0.9)) is FusedSGD
    on_meta = [nn.Parameter(torch.empty(2, device="meta"))]
    assert type(adam(on_meta, lr=0.1)) is torch.optim.Adam
    assert type(adam(on_meta, lr=0.1, decoupled=True)) is torch.optim.AdamW
    assert type(sgd(on_meta, lr=0.1)) is torch.optim.SGD
    # A generator of parameters is read once, whichever class takes it.
    assert len(adam((p for p in weights.parameters()), lr=0.1).param_groups[0]["params"]) == 2
    with pytest.raises(ValueError, match="empty parameter list"):
        adam([], lr=0.1)


def test_training_never_imports_torch_dynamo():
    # torch.optim's own optimizers import torch._dynamo (and with a CUDA build, sympy and
    # triton) on their first step; a run that never compiles must not pay for it.
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from kasmina_helpers import build_model, loss_fn, set_stage, toy_data
        from esper_core.contracts import SeedStage
        from esper_core.kasmina import SafetyGovernor, SeedTrainer
        for name in ("adamw", "sgd"):
            model = build_model()
            trainer = SeedTrainer(model, host_lr=1e-2, seed_lr=1e-2, optimizer=name,
                                  governor=SafetyGovernor(model))
            set_stage(model, "p0", SeedStage.TRAINING)
            trainer.train_epoch(toy_data(3), loss_fn, epoch=1)
            trainer.load_state_dict(trainer.state_dict())
        print(sorted(m for m in ("torch._dynamo", "sympy") if m in sys.modules))
    """)
    helpers = str(Path(__file__).parent)
    done = subprocess.run([sys.executable, "-c", script, helpers], capture_output=True, text=True,
                          check=True)
    assert done.stdout.splitlines()[-1] == "[]", done.stdout[-2000:] + done.stderr
