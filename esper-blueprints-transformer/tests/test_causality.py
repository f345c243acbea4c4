"""Changing a future token never changes an earlier position's output: host and every seed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from esper_blueprints_transformer.config import GPTConfig
from esper_blueprints_transformer.host import GPTHost
from esper_core.contracts.specs import BlueprintSpec

Perturb = Callable[[nn.Module], None]

T = 24
CHANGED = 13  # the first position whose token (or activation) is altered


def tokens() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    a = torch.randint(256, (2, T), generator=gen)
    b = a.clone()
    b[:, CHANGED:] = (a[:, CHANGED:] + 1 + torch.randint(254, (2, T - CHANGED), generator=gen)) % 256
    return a, b


def assert_causal(out_a: torch.Tensor, out_b: torch.Tensor) -> None:
    torch.testing.assert_close(out_a[:, :CHANGED], out_b[:, :CHANGED], rtol=0, atol=1e-6)
    # ...and the change is visible from its own position on, so the test can fail.
    assert not torch.allclose(out_a[:, CHANGED:], out_b[:, CHANGED:])


def small_host() -> GPTHost:
    torch.manual_seed(0)
    return GPTHost(GPTConfig(context=32, n_layers=2, d_model=32, n_heads=4)).eval()


def test_host_is_causal() -> None:
    host = small_host()
    a, b = tokens()
    with torch.no_grad():
        assert_causal(host(a), host(b))


def test_every_segment_prefix_is_causal() -> None:
    host = small_host()
    a, b = tokens()
    xa, xb = a, b
    with torch.no_grad():
        for segment in host.segments:
            xa, xb = segment(xa), segment(xb)
            assert_causal(xa, xb)


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training"])
def test_blueprint_on_host_activations_is_causal(spec: BlueprintSpec, grad: bool, perturb: Perturb) -> None:
    host = small_host()
    a, b = tokens()
    torch.manual_seed(1)
    seed = spec.factory(width=32)
    perturb(seed)  # a zero-initialised seed would be causal for free
    with torch.no_grad():
        ha, hb = host.segments[0](a), host.segments[0](b)
    with torch.set_grad_enabled(grad):
        if grad:
            ha.requires_grad_(True)
        assert_causal(seed(ha).detach(), seed(hb).detach())


def test_seed_cannot_see_future_even_on_identical_past(perturb: Perturb) -> None:
    """A position-mixing seed fed activations that differ only in the future stays unchanged."""
    from esper_blueprints_transformer.blueprints.attention import attention

    torch.manual_seed(0)
    seed = attention(width=16)
    perturb(seed)
    x = torch.randn(1, T, 16)
    y = x.clone()
    y[:, CHANGED:] += 5.0
    with torch.no_grad():
        assert_causal(seed(x), seed(y))


def inserted(host: GPTHost, seed: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    x = host.segments[0](idx)
    x = seed(x)
    for segment in host.segments[1:]:
        x = segment(x)
    return x


def test_blueprint_inserted_between_segments_is_causal(spec: BlueprintSpec, perturb: Perturb) -> None:
    host = small_host()
    a, b = tokens()
    torch.manual_seed(1)
    seed = spec.factory(width=32)
    perturb(seed)
    with torch.no_grad():
        assert_causal(inserted(host, seed, a), inserted(host, seed, b))
