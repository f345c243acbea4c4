"""Position-wise residual seeds: identity, scaled LayerNorm, LoRA adapters and MLPs.

Each one is the identity at initialisation (its last layer starts at zero), so germinating it
never disturbs the host (DESIGN §8). None mixes positions, so all are causal by construction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from esper_blueprints_transformer.params import LORA_LARGE_RANK, LORA_RANK
from esper_core.sdk import check_width


class Noop(nn.Module):
    """The identity: a control arm that costs nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ScaledNorm(nn.Module):
    """x + γ ⊙ LN(x) + β with γ = β = 0 at init (Ba et al. 2016, "Layer Normalization").

    The LayerNorm's own affine weight is the learnable scale, so zero-initialising it makes the
    branch silent while its gradient, ⊙ LN(x), is non-zero from the first step.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        nn.init.zeros_(self.norm.weight)
        nn.init.zeros_(self.norm.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm(x)


class LoRA(nn.Module):
    """x + B(A x), rank ``rank``, B = 0 at init (Hu et al. 2021, "LoRA", arXiv:2106.09685).

    A keeps the default Kaiming-uniform init so B's gradient, (A x)ᵀ g, is non-zero at once.
    """

    def __init__(self, *, width: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Linear(width, rank, bias=False)
        self.up = nn.Linear(rank, width, bias=False)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.down(x))


class ResidualMLP(nn.Module):
    """x + W₂ GELU(W₁ LN(x)), hidden ``expansion · width``, W₂ = 0 at init.

    The position-wise feed-forward of Vaswani et al. 2017 with GELU (Hendrycks & Gimpel 2016)
    and a pre-norm (Xiong et al. 2020) so it reads the residual stream at a stable scale.
    """

    def __init__(self, *, width: int, expansion: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, expansion * width)
        self.proj = nn.Linear(expansion * width, width)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(F.gelu(self.fc(self.norm(x))))


def noop(*, width: int) -> nn.Module:
    """Blueprint 0: identity."""
    check_width(width)
    return Noop()


def norm(*, width: int) -> nn.Module:
    """Blueprint 3: learnable-scaled LayerNorm residual, scale zero-initialised."""
    check_width(width)
    return ScaledNorm(width=width)


def lora(*, width: int) -> nn.Module:
    """Blueprint 8: rank-8 low-rank residual adapter (Hu et al. 2021)."""
    check_width(width)
    return LoRA(width=width, rank=LORA_RANK)


def lora_large(*, width: int) -> nn.Module:
    """Blueprint 9: rank-32 low-rank residual adapter (Hu et al. 2021)."""
    check_width(width)
    return LoRA(width=width, rank=LORA_LARGE_RANK)


def mlp_small(*, width: int) -> nn.Module:
    """Blueprint 10: 2× GELU MLP residual, output zero-initialised."""
    check_width(width)
    return ResidualMLP(width=width, expansion=2)


def mlp(*, width: int) -> nn.Module:
    """Blueprint 11: 4× GELU MLP residual, output zero-initialised (Vaswani et al. 2017)."""
    check_width(width)
    return ResidualMLP(width=width, expansion=4)
