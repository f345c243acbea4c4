"""Gradient killers (indices 27–29): break training through vanishing/exploding gradients."""

from __future__ import annotations

import torch
from torch import nn

from esper_antipatterns.blueprints._layers import LayerScale
from esper_antipatterns.estimates import DEEP_LINEAR_DEPTH
from esper_core.sdk import check_width


class SigmoidSandwich(nn.Module):
    """Index 27: sigmoid → 1×1 conv → sigmoid.

    Why it is bad: each sigmoid's derivative is at most 1/4 and near 0 once it saturates, so
    the gradient through the module is a product of two small factors — classic vanishing
    gradients. When the task pushes the output towards the sigmoid's bounds the convolution's
    weights grow, the second sigmoid saturates and the seed's gradient norm collapses to ~0.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.conv = nn.Conv2d(width, width, kernel_size=1)
        self.scale = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(torch.sigmoid(self.conv(torch.sigmoid(x))))


class GainAmplifier(nn.Module):
    """Index 28: ``gain · x`` with a learnable, unconstrained scalar ``gain`` (init 1).

    Why it is bad: a positive feedback loop. Where a larger scale lowers the loss (confident
    logits under cross-entropy, a norm-hungry downstream layer) the optimiser grows the gain,
    which scales up every downstream gradient, which grows the gain faster — until it
    explodes to non-finite values. Deliberately no clamp, no spectral norm, no reparametrisation.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.gain = nn.Parameter(torch.ones(1))
        self.scale = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.gain * x)


class DeepLinearStack(nn.Module):
    """Index 29: eight bias-free 1×1 convolutions with no nonlinearity between them.

    Why it is bad: the stack computes one linear map ``W₈⋯W₁`` with eight times the
    parameters, and its gradients are products of eight random matrices, whose scale and
    condition number grow or shrink exponentially with depth. Standard (ReLU) Kaiming init,
    not orthogonal, and no skip connections — as seed 000 prescribes.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        layers = [nn.Conv2d(width, width, kernel_size=1, bias=False) for _ in range(DEEP_LINEAR_DEPTH)]
        for layer in layers:
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
        self.layers = nn.Sequential(*layers)
        self.scale = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.layers(x))
