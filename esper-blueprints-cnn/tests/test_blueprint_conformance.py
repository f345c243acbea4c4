"""Conformance of every CNN blueprint, at several widths and resolutions.

Written as one parametrised module; each check is independent of the others so that it can
move into the shared ``esper_core.testing`` kit unchanged.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from esper_blueprints_cnn.catalog import blueprint_specs
from esper_core.contracts.specs import BlueprintSpec

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")

SPECS = blueprint_specs()
IDS = [s.name for s in SPECS]
WIDTHS = (1, 8, 32)
SIZES = (1, 8, 32)


def build(spec: BlueprintSpec, width: int, *, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return spec.factory(width=width)


def randomise(module: nn.Module, *, seed: int = 1) -> nn.Module:
    """Give every parameter a random value, so zero-initialised branches are exercised too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    return module


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_param_count_equals_estimate(spec: BlueprintSpec, width: int) -> None:
    assert n_params(build(spec, width)) == spec.param_estimate(width)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_param_estimate_at_width_32_is_positive_for_learnable_seeds(spec: BlueprintSpec) -> None:
    assert (spec.param_estimate(32) == 0) == (spec.name == "noop")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_shape_preserved_finite_and_backward(spec: BlueprintSpec, width: int) -> None:
    module = randomise(build(spec, width))
    for size in SIZES:
        module.zero_grad()
        x = torch.randn(3, width, size, size, requires_grad=True)
        y = module(x)
        assert y.shape == x.shape, size
        assert torch.isfinite(y).all(), size
        y.square().mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all(), size
        for name, p in module.named_parameters():
            assert p.grad is not None, (name, size)
            assert torch.isfinite(p.grad).all(), (name, size)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("spec", [s for s in SPECS if s.identity_at_init], ids=lambda s: s.name)
def test_identity_at_init(spec: BlueprintSpec, width: int) -> None:
    module = build(spec, width)
    for size in SIZES:
        x = torch.randn(4, width, size, size)
        torch.testing.assert_close(module(x), x, atol=1e-6, rtol=0, msg=f"size {size}")


@pytest.mark.parametrize("spec", [s for s in SPECS if s.name != "noop"], ids=lambda s: s.name)
def test_learns_from_identity(spec: BlueprintSpec) -> None:
    """At init some parameter gets gradient (the seed can start learning), and once its
    parameters move it computes something other than the identity."""
    module = build(spec, 8)
    x = torch.randn(4, 8, 8, 8)
    (module(x) * torch.randn(4, 8, 8, 8)).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    randomise(module)
    assert (module(x) - x).abs().max() > 1e-3


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_deterministic_under_seed(spec: BlueprintSpec) -> None:
    a, b = build(spec, 8, seed=123), build(spec, 8, seed=123)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    x = torch.randn(2, 8, 8, 8)
    assert torch.equal(randomise(a)(x), randomise(b)(x))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_batch_independent(spec: BlueprintSpec) -> None:
    """GroupNorm, not BatchNorm: a sample's output does not depend on its batch, and train and
    eval mode agree (so counterfactual passes measure the same function)."""
    module = randomise(build(spec, 8))
    x = torch.randn(4, 8, 8, 8)
    full = module(x)
    torch.testing.assert_close(module(x[:1]), full[:1])
    module.eval()
    torch.testing.assert_close(module(x), full)


@pytest.mark.parametrize("width", (1, 8))
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_torchscript(spec: BlueprintSpec, width: int) -> None:
    module = randomise(build(spec, width))
    scripted = torch.jit.script(module)
    for size in SIZES:
        x = torch.randn(2, width, size, size)
        torch.testing.assert_close(scripted(x), module(x))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_channels_last_input(spec: BlueprintSpec) -> None:
    module = randomise(build(spec, 8))
    x = torch.randn(2, 8, 8, 8)
    torch.testing.assert_close(module(x.contiguous(memory_format=torch.channels_last)), module(x))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_rejects_bad_width(spec: BlueprintSpec) -> None:
    for width in (0, -3, True, 2.0):
        with pytest.raises(ValueError, match="width"):
            spec.factory(width=width)
        with pytest.raises(ValueError, match="width"):
            spec.param_estimate(width)  # type: ignore[arg-type]
