"""Failure-mode tests: each anti-pattern demonstrates its badness (seed 000, "Failure Mode Tests")."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from esper_antipatterns.blueprints.catastrophic import DivisionByFeature, KaimingMismatch
from esper_antipatterns.blueprints.deceptive import ExpensiveIdentity, RedundantEnsemble
from esper_antipatterns.blueprints.gradient_killers import DeepLinearStack, GainAmplifier, SigmoidSandwich
from esper_antipatterns.blueprints.subtle import AsymmetricBottleneck, CorrelatedNoise, MomentumDampener
from esper_antipatterns.detectors import FailureDetector, SeedObservation
from esper_antipatterns.estimates import expensive_identity, macs_per_pixel

torch.set_num_threads(1)


def grad_norm(module: nn.Module) -> float:
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    return float(torch.cat(grads).norm()) if grads else 0.0


def signatures_for(blueprint: str, **fields) -> set[str]:
    obs = SeedObservation(slot="s0", blueprint=blueprint, epoch=1, val_accuracy=50.0, seed_params=10,
                          host_params=1000, **fields)
    return {a.signature for a in FailureDetector().observe(obs)}


# --- subtle degraders -------------------------------------------------------------------------


def test_correlated_noise_is_identical_across_the_batch_and_does_not_average_out() -> None:
    torch.manual_seed(0)
    module = CorrelatedNoise(width=8).train()
    x = torch.randn(16, 8, 4, 4)
    noise = module(x) - x  # LayerScale starts at 1
    assert noise.abs().max() > 0
    # Every sample, and every pixel, receives the very same noise vector.
    torch.testing.assert_close(noise, noise[:1, :, :1, :1].expand_as(noise))
    # Averaging over the batch therefore does not shrink it: independent noise would shrink by √16.
    draws = torch.stack([(module(x) - x).mean(dim=(0, 2, 3)) for _ in range(200)])
    assert draws.std().item() == pytest.approx(0.01, rel=0.2)
    # Evaluation mode is clean (noise is a training-time intervention, like dropout).
    module.eval()
    assert torch.equal(module(x), x)


def test_asymmetric_bottleneck_loses_rank_and_cannot_learn_identity() -> None:
    torch.manual_seed(0)
    width = 16
    module = AsymmetricBottleneck(width=width)
    x = torch.randn(64, width, 4, 4)
    pixels = module(x).permute(0, 2, 3, 1).reshape(-1, width)
    centred = pixels - pixels.mean(dim=0)
    assert torch.linalg.matrix_rank(centred).item() <= width // 8  # 2 of 16 dimensions survive

    def identity_error(seed: nn.Module) -> float:
        opt = torch.optim.Adam(seed.parameters(), lr=3e-2)
        for _ in range(150):
            loss = (seed(x) - x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item() / x.var().item()

    # A full-width 1×1 conv learns the identity; the bottleneck keeps most of the error.
    assert identity_error(nn.Conv2d(width, width, 1)) < 0.05
    assert identity_error(AsymmetricBottleneck(width=width)) > 0.5


def test_momentum_dampener_output_depends_on_batch_composition_and_order() -> None:
    torch.manual_seed(0)
    a, b, c = torch.randn(3, 4, 8, 3, 3).unbind(0)
    sample = a[:1]

    def out_for_sample(batches: list[torch.Tensor]) -> torch.Tensor:
        module = MomentumDampener(width=8).train()
        for batch in batches[:-1]:
            module(batch)
        return module(batches[-1])[:1]

    # Same sample, same history, different batch-mates: different output.
    with_b = out_for_sample([torch.cat([sample, b[1:]])])
    with_c = out_for_sample([torch.cat([sample, c[1:]])])
    assert not torch.allclose(with_b, with_c)
    # Same final batch, history in a different order: different output (order dependence).
    final = torch.cat([sample, a[1:]])
    assert not torch.allclose(out_for_sample([b, c, final]), out_for_sample([c, b, final]))


def test_momentum_dampener_scales_gradients_by_one_minus_momentum() -> None:
    module = MomentumDampener(width=4).train()
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    module(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 0.01))


# --- gradient killers -------------------------------------------------------------------------


def test_sigmoid_sandwich_attenuates_the_gradient_through_it() -> None:
    torch.manual_seed(0)
    sandwich = SigmoidSandwich(width=16)
    plain = nn.Conv2d(16, 16, 1)
    plain.load_state_dict(sandwich.conv.state_dict())
    x = torch.randn(8, 16, 4, 4)
    norms = []
    for module in (plain, sandwich):
        xi = x.clone().requires_grad_(True)
        module(xi).sum().backward()
        norms.append(xi.grad.norm().item())
    # Two sigmoid derivatives (each ≤ 1/4) multiply: at most 1/16 of the plain conv's gradient.
    assert norms[1] < norms[0] / 16


def test_sigmoid_sandwich_gradients_collapse_once_saturated() -> None:
    torch.manual_seed(0)
    sandwich = SigmoidSandwich(width=8)
    plain = nn.Conv2d(8, 8, 1)
    with torch.no_grad():  # the state training reaches when it pushes outputs to the bound
        sandwich.conv.bias.fill_(30.0)
        plain.load_state_dict(sandwich.conv.state_dict())
    x, target = torch.randn(16, 8, 4, 4), torch.randn(16, 8, 4, 4)
    before = sandwich.conv.weight.detach().clone()
    opt = torch.optim.SGD(sandwich.parameters(), lr=0.1)
    for _ in range(20):
        opt.zero_grad()
        (sandwich(x) - target).pow(2).mean().backward()
        conv_norm = grad_norm(sandwich.conv)
        opt.step()
    (plain(x) - target).pow(2).mean().backward()
    assert conv_norm < 1e-7 < grad_norm(plain)
    # "Linear layer weights freeze": twenty SGD steps moved them by (almost) nothing.
    assert (sandwich.conv.weight - before).abs().max() < 1e-8
    assert "gradient_collapse" in signatures_for("sigmoid_sandwich", grad_norm=conv_norm)


def _regression(seed: nn.Module, steps: int) -> tuple[list[float], list[float]]:
    """SGD on a linear regression through ``seed``; loss and seed gradient norm per step."""
    width = 16
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, width, 1, 1, generator=generator)
    y = 10 * (x.flatten(1) @ torch.randn(width, generator=generator))
    torch.manual_seed(0)
    head = nn.Linear(width, 1)
    opt = torch.optim.SGD([*seed.parameters(), *head.parameters()], lr=0.01)
    losses, norms = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = (head(seed(x).flatten(1)).squeeze(1) - y).pow(2).mean()
        loss.backward()
        losses.append(loss.item())
        norms.append(grad_norm(seed))
        if not math.isfinite(loss.item()):
            break
        opt.step()
    return losses, norms


def test_gain_amplifier_explodes_where_the_same_host_without_it_converges() -> None:
    baseline, _ = _regression(nn.Identity(), steps=100)
    assert baseline[-1] < 0.1 * baseline[0]

    amplifier = GainAmplifier(width=16)
    losses, norms = _regression(amplifier, steps=100)
    blew_up = not math.isfinite(losses[-1]) or abs(amplifier.gain.item()) > 1e4
    assert blew_up, f"gain {amplifier.gain.item()}, last loss {losses[-1]}"
    assert len(losses) < 100  # non-finite long before the baseline finished converging
    peak = max((n for n in norms if math.isfinite(n)), default=math.inf)
    assert peak > 1e4
    assert "gradient_explosion" in signatures_for("gain_amplifier", grad_norm=peak)
    assert "nan_inf" in signatures_for("gain_amplifier", grad_norm=norms[-1], finite=False)


def test_gain_amplifier_cannot_run_away_under_adamw_or_in_front_of_batchnorm() -> None:
    """Why the real run shows no explosion (docs/antipatterns_signatures.md): the runs train
    seeds with AdamW, whose step is about lr whatever the gradient, so the feedback loop cannot
    compound; and the CNN host's next block starts conv → BatchNorm, whose batch statistics
    cancel any output scale, so the gain's gradient is zero there."""
    amplifier = GainAmplifier(width=16)
    opt = torch.optim.AdamW(amplifier.parameters(), lr=0.01, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, 1, 1, generator=generator)
    y = 10 * (x.flatten(1) @ torch.randn(16, generator=generator))
    torch.manual_seed(0)
    head = nn.Linear(16, 1)
    for _ in range(100):
        opt.zero_grad()
        (head(amplifier(x).flatten(1)).squeeze(1) - y).pow(2).mean().backward()
        opt.step()
    # Adam's step is at most (1 − β1)/√(1 − β2) ≈ 3.2 lr; SGD passed 1e4 in fewer steps.
    assert abs(amplifier.gain.item() - 1.0) <= 100 * 0.01 * 3.2

    def gain_gradient(norm: nn.Module) -> float:
        torch.manual_seed(0)
        amplifier = GainAmplifier(width=8)
        block = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, bias=False), norm, nn.ReLU())
        block(amplifier(torch.rand(32, 8, 8, 8))).square().mean().backward()
        assert amplifier.gain.grad is not None
        return abs(amplifier.gain.grad.item())

    # Only BatchNorm's eps keeps it from being exactly 0.
    assert gain_gradient(nn.BatchNorm2d(16)) < 0.01 * gain_gradient(nn.Identity())


def test_deep_linear_stack_is_one_poorly_conditioned_linear_map() -> None:
    torch.manual_seed(0)
    width = 32
    stack = DeepLinearStack(width=width)
    weights = [layer.weight[:, :, 0, 0] for layer in stack.layers]
    product = weights[0]
    for w in weights[1:]:
        product = w @ product
    x = torch.randn(4, width, 3, 3)
    with torch.no_grad():
        as_one_map = torch.einsum("oc,bchw->bohw", product, x)
        torch.testing.assert_close(stack(x), as_one_map, rtol=1e-4, atol=1e-3)
        # Eight matrices' worth of parameters for one map, and a condition number that grows
        # exponentially with depth.
        single = torch.linalg.cond(weights[0]).item()
        assert torch.linalg.cond(product).item() > 1e3 * single
        # ReLU Kaiming gain √2 per layer with no ReLU: the signal grows ~2⁴ = 16×.
        assert stack(x).std() / x.std() > 4


# --- deceptive patterns -----------------------------------------------------------------------


class _TinyHost(nn.Module):
    """conv stem → (seed) → global average pool → linear head."""

    def __init__(self, width: int, seed: nn.Module | None) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.seed = seed or nn.Identity()
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.seed(torch.relu(self.stem(x))).mean(dim=(2, 3)))


def _train_accuracy(width: int, seed: nn.Module | None) -> float:
    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 2, (96,), generator=generator)
    images = torch.randn(96, 3, 6, 6, generator=generator) * 0.5
    images[:, 0] += (2 * labels - 1).float()[:, None, None]
    train, val = slice(0, 64), slice(64, 96)
    torch.manual_seed(0)
    host = _TinyHost(width, seed)
    opt = torch.optim.Adam(host.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(host(images[train]), labels[train]).backward()
        opt.step()
    with torch.no_grad():
        return 100.0 * (host(images[val]).argmax(1) == labels[val]).float().mean().item()


def test_expensive_identity_adds_cost_but_no_accuracy() -> None:
    width = 4
    module = ExpensiveIdentity(width=width)
    # No skip: the residual-style init makes the whole output 0, not the identity.
    assert torch.equal(module(torch.randn(2, width, 5, 5)), torch.zeros(2, width, 5, 5))
    baseline = _train_accuracy(width, None)
    with_seed = _train_accuracy(width, ExpensiveIdentity(width=width))
    contribution = with_seed - baseline
    assert baseline >= 90.0
    assert contribution <= 0.5
    extra_params = expensive_identity(width)
    assert extra_params == 18 * width**2 + 7 * width
    host_params = sum(p.numel() for p in _TinyHost(width, None).parameters())
    assert extra_params > host_params  # more than doubles the model
    detector = FailureDetector()
    obs = SeedObservation(slot="s0", blueprint="expensive_identity", epoch=1, val_accuracy=with_seed,
                          contribution=contribution, seed_params=extra_params,
                          host_params=host_params, seed_flops=macs_per_pixel("expensive_identity", width),
                          host_flops=27 * width + 2 * width)
    window = detector.config.cost_min_epochs
    for epoch in range(1, window):
        detector.observe(SeedObservation(**{**_fields(obs), "epoch": epoch}))
    found = detector.observe(SeedObservation(**{**_fields(obs), "epoch": window}))
    assert [a.signature for a in found] == ["cost_without_benefit"]


def _fields(obs: SeedObservation) -> dict:
    import attrs

    return attrs.asdict(obs)


def test_redundant_ensemble_branches_never_diversify() -> None:
    torch.manual_seed(0)
    width = 8
    ensemble = RedundantEnsemble(width=width)
    x = torch.randn(32, width, 3, 3)
    target = torch.randn(32, width, 3, 3) * 10
    initial = [b.weight.detach().clone() for b in ensemble.branches]

    def mean_correlation() -> float:
        with torch.no_grad():
            outs = [o.flatten() for o in ensemble.branch_outputs(x)]
            corr = torch.corrcoef(torch.stack(outs))
            return corr[~torch.eye(len(outs), dtype=torch.bool)].mean().item()

    before = mean_correlation()
    opt = torch.optim.Adam(ensemble.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        (ensemble(x) - target).pow(2).mean().backward()
        opt.step()
    after = mean_correlation()
    # Identical gradients → identical updates: branch differences stay at their init values.
    for i in range(1, len(initial)):
        torch.testing.assert_close(ensemble.branches[i].weight - ensemble.branches[0].weight,
                                   initial[i] - initial[0], rtol=0, atol=1e-5)
    assert after > max(0.8, before + 0.3)
    # And the mean of linear branches is one linear map: 4× the parameters for 1× the capacity.
    with torch.no_grad():
        single = nn.Conv2d(width, width, 1)
        single.weight.copy_(torch.stack([b.weight for b in ensemble.branches]).mean(0))
        single.bias.copy_(torch.stack([b.bias for b in ensemble.branches]).mean(0))
        torch.testing.assert_close(ensemble(x), ensemble.scale(single(x)), rtol=1e-4, atol=1e-5)


# --- catastrophic failures --------------------------------------------------------------------


def test_kaiming_mismatch_activations_are_badly_scaled() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 64, 8, 8)
    with torch.no_grad():
        ratio = (KaimingMismatch(width=64)(x).std() / x.std()).item()
        assert 1.25 < ratio < 1.6  # √2 ≈ 1.41: the variance the absent ReLU was meant to halve
        matched = nn.Conv2d(64, 64, 3, padding=1)
        nn.init.kaiming_normal_(matched.weight, nonlinearity="linear")
        assert 0.8 < (matched(x).std() / x.std()).item() < 1.2
        h = x
        for _ in range(10):  # compounding, as in a stack of such seeds
            h = KaimingMismatch(width=64)(h)
        assert (h.std() / x.std()).item() > 10  # (√2)¹⁰ = 32


def test_division_by_feature_yields_non_finite_values() -> None:
    torch.manual_seed(0)
    module = DivisionByFeature(width=8)
    features = torch.relu(torch.randn(2, 8, 4, 4))
    features[0, :, 1, 2] = 0.0  # a pixel where every channel is dead after the ReLU
    out = module(features)
    assert torch.isnan(out[0, :, 1, 2]).all()
    assert not torch.isfinite(out).all()
    # Centred data: finite perhaps, but huge values and huge gradients through 1/x.
    x = torch.randn(4, 8, 16, 16, requires_grad=True)
    y = module(x)
    assert y.abs().max() > 1e2
    # (a plain sum would be the constant C per pixel: the upstream gradient must vary)
    (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    assert x.grad.norm() > 1e4 or not torch.isfinite(x.grad).all()
    assert "nan_inf" in signatures_for("division_by_feature", finite=bool(torch.isfinite(out).all()))
