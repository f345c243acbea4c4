"""Transformer forms of the ten anti-patterns: the same defects on a ``(batch, sequence, C)`` slot.

A transformer slot carries the residual stream between blocks, and a seed's output replaces the
stream (blended in by α). Each form keeps its CNN twin's defect and swaps the layers for their
position-wise equivalents: a 1×1 convolution becomes a ``Linear`` over the last dimension, a
3×3 convolution a ``Linear`` too (a transformer mixes positions only in attention), GroupNorm a
LayerNorm, and the LayerScale a ``(C,)`` vector. None looks at a later position, so every form
is causal; the only state shared between positions is the batch-wide noise and the EMA, both
fixed before the current batch's positions are read.
"""

from __future__ import annotations

import torch
from torch import nn

from esper_antipatterns.estimates import (
    DEEP_LINEAR_DEPTH,
    ENSEMBLE_BRANCHES,
    MOMENTUM,
    NOISE_SIGMA_INIT,
    bottleneck_hidden,
)
from esper_core.sdk import check_width


class TokenScale(nn.Module):
    """The LayerScale of a transformer slot: a learnable ``(C,)`` output scale, 1 unless given."""

    def __init__(self, width: int, init: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((width,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class CorrelatedNoise(nn.Module):
    """Index 24: one ``(1, 1, C)`` Gaussian noise vector per pass, shared by every token of the batch."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.sigma = nn.Parameter(torch.tensor(NOISE_SIGMA_INIT))
        self.scale = TokenScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            noise = torch.randn([1, 1, x.shape[-1]], dtype=x.dtype, device=x.device)
            x = x + self.sigma * noise
        return self.scale(x)


class AsymmetricBottleneck(nn.Module):
    """Index 25: ``Linear`` down by 8×, ReLU, an independently initialised ``Linear`` up, no skip:
    the residual stream is squeezed through ``C // 8`` dimensions."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        hidden = bottleneck_hidden(width)
        self.down = nn.Linear(width, hidden)
        self.act = nn.ReLU()
        self.up = nn.Linear(hidden, width)
        self.scale = TokenScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.up(self.act(self.down(x))))


class MomentumDampener(nn.Module):
    """Index 26: ``EMA + γ·(x − EMA)``, γ from 0.01, the EMA a per-channel buffer over past batches.

    The EMA is read before this batch updates it, so a token's output depends on earlier batches
    but never on a later position of its own sequence (the CNN form folds the current batch in
    first; here that would leak the future into the past).
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.momentum = MOMENTUM
        self.register_buffer("ema", torch.zeros(width))
        self.ema: torch.Tensor  # declared for mypy here: TorchScript rejects a class-level annotation
        self.scale = TokenScale(width, init=1.0 - MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ema = self.ema.detach().clone().to(x.dtype)
        if self.training:
            with torch.no_grad():
                batch_mean = x.detach().reshape(-1, x.shape[-1]).mean(dim=0).to(self.ema.dtype)
                self.ema.mul_(self.momentum).add_(batch_mean, alpha=1.0 - self.momentum)
        return ema + self.scale(x - ema)


class SigmoidSandwich(nn.Module):
    """Index 27: sigmoid → ``Linear`` → sigmoid applied to the residual stream itself."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.linear = nn.Linear(width, width)
        self.scale = TokenScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(torch.sigmoid(self.linear(torch.sigmoid(x))))


class GainAmplifier(nn.Module):
    """Index 28: ``gain · x`` with an unconstrained learnable scalar gain (init 1) on the stream."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.gain = nn.Parameter(torch.ones(1))
        self.scale = TokenScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.gain * x)


class DeepLinearStack(nn.Module):
    """Index 29: eight bias-free ``Linear`` layers, ReLU Kaiming init, no nonlinearity, no skip."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        layers = [nn.Linear(width, width, bias=False) for _ in range(DEEP_LINEAR_DEPTH)]
        for layer in layers:
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
        self.layers = nn.Sequential(*layers)
        self.scale = TokenScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.layers(x))


class ExpensiveIdentity(nn.Module):
    """Index 30: ``Linear`` (identity init) → LayerNorm → ReLU → ``Linear`` (zero) → LayerNorm,
    no residual: the transformer MLP block with its skip removed, so the slot outputs exactly 0
    at germination and the stream that reaches the next block is gone."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.linear1 = nn.Linear(width, width)
        nn.init.eye_(self.linear1.weight)
        nn.init.zeros_(self.linear1.bias)
        self.norm1 = nn.LayerNorm(width)
        self.act = nn.ReLU()
        self.linear2 = nn.Linear(width, width)
        nn.init.zeros_(self.linear2.weight)
        nn.init.zeros_(self.linear2.bias)
        self.norm2 = nn.LayerNorm(width)
        self.scale = TokenScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.linear1(x)))
        return self.scale(self.norm2(self.linear2(h)))


class RedundantEnsemble(nn.Module):
    """Index 31: the mean of four ``Linear`` branches that differ only in their random init."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.branches = nn.ModuleList([nn.Linear(width, width) for _ in range(ENSEMBLE_BRANCHES)])
        self.scale = TokenScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(torch.stack([branch(x) for branch in self.branches]).mean(dim=0))


class KaimingMismatch(nn.Module):
    """Index 32: a ``Linear`` with ReLU Kaiming init (gain √2) and no ReLU after it."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.linear = nn.Linear(width, width)
        nn.init.kaiming_normal_(self.linear.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.linear.bias)
        self.scale = TokenScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.linear(x))


class DivisionByFeature(nn.Module):
    """Index 33: divides each token by its mean over channels, with no epsilon. The residual
    stream is roughly centred per token, so that mean sits near 0."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.scale = TokenScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(x / x.mean(dim=-1, keepdim=True))
