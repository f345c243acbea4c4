"""The original Esper CNN seeds: noop, conv_light, norm, conv_small, conv_heavy (catalog 0, 1,
3, 6, 7), plus the dilated variant of conv_light (13)."""

from __future__ import annotations

import torch
from torch import nn

from esper_blueprints_cnn.blueprints._layers import ChannelScale, group_norm, zero_
from esper_core.sdk import check_width


class ConvLight(nn.Module):
    """Residual 3×3 conv → GroupNorm → ReLU, scaled per channel (zero at init).

    ``dilation > 1`` widens the receptive field at the same cost (Yu & Koltun 2016).
    """

    def __init__(self, width: int, dilation: int = 1) -> None:
        super().__init__()
        check_width(width)
        self.conv = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm = group_norm(width)
        self.act = nn.ReLU()
        self.scale = ChannelScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale(self.act(self.norm(self.conv(x))))


class NormSeed(nn.Module):
    """``x + γ ⊙ GroupNorm(x)``: a learnable-scaled normalisation residual, γ = 0 at init."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        self.norm = group_norm(width)
        self.scale = ChannelScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale(self.norm(x))


class ConvSmall(nn.Module):
    """``x + W x + b`` with a zero-initialised 1×1 convolution: the cheapest learnable seed."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        self.conv = zero_(nn.Conv2d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def noop(*, width: int) -> nn.Module:
    """Identity: the control blueprint (no parameters, changes nothing)."""
    check_width(width)
    return nn.Identity()


def conv_light(*, width: int) -> nn.Module:
    """Residual 3×3 conv + norm + ReLU (a ResNet basic branch, He et al. 2016)."""
    return ConvLight(width)


def norm(*, width: int) -> nn.Module:
    """Learnable-scaled GroupNorm residual (Wu & He 2018)."""
    return NormSeed(width)


def conv_small(*, width: int) -> nn.Module:
    """Zero-initialised 1×1 conv residual."""
    return ConvSmall(width)


def conv_heavy(*, width: int) -> nn.Module:
    """Two conv_light blocks in sequence (twice the depth and parameters)."""
    return nn.Sequential(ConvLight(width), ConvLight(width))


def dilated(*, width: int) -> nn.Module:
    """conv_light with dilation 2: a 5×5 receptive field for 3×3 cost (Yu & Koltun 2016)."""
    return ConvLight(width, dilation=2)
