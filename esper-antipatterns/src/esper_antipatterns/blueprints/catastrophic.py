"""Catastrophic failures (indices 32–33): destroy the model within the first passes."""

from __future__ import annotations

import torch
from torch import nn

from esper_antipatterns.blueprints._layers import LayerScale
from esper_core.sdk import check_width


class KaimingMismatch(nn.Module):
    """Index 32: a 3×3 conv initialised for ReLU (Kaiming fan-in, gain √2) with no ReLU after it.

    Why it is bad: Kaiming's ``√(2/fan_in)`` assumes the following ReLU discards half of the
    signal. Without it the output's standard deviation is √2 ≈ 1.4× the input's; stacked or
    repeated, the excess compounds ((1.4)¹⁰ ≈ 29×) into exploding activations, gradients and
    eventually non-finite values. The trailing LayerScale comes too late to help.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.conv = nn.Conv2d(width, width, kernel_size=3, padding=1)
        # The mismatch: the init says "relu", the forward has no relu.
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="relu")
        assert self.conv.bias is not None  # Conv2d's default bias=True
        nn.init.zeros_(self.conv.bias)
        self.scale = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.conv(x))


class DivisionByFeature(nn.Module):
    """Index 33: divides activations by their mean over channels — with no epsilon.

    Why it is bad: a pixel whose channels average to 0 (every channel 0 after a ReLU, or
    centred data) gives ``x / 0`` = ±Inf or NaN on the very first forward pass, and near-zero
    means give huge values whose ``1/x²`` gradients explode. The ``+ eps`` that makes
    LayerNorm safe is deliberately left out.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.scale = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        return self.scale(x / mean)
