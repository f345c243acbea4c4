"""Cheap-convolution seeds from the mobile-network literature: depthwise (4), bottleneck (5),
shift (19), shuffle (20), mixdw (22). Each is a residual branch whose last layer is zero at init.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from esper_blueprints_cnn.blueprints._layers import ChannelScale, group_norm, zero_
from esper_blueprints_cnn.estimates import (
    bottleneck_hidden,
    mixdw_splits,
    shift_group,
    shuffle_groups,
)
from esper_core.sdk import check_width


class DepthwiseSeparable(nn.Module):
    """Depthwise 3×3 → GroupNorm → ReLU → pointwise 1×1 (zero-init), residual
    (MobileNet, Howard et al. 2017)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        self.depthwise = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.norm = group_norm(width)
        self.act = nn.ReLU()
        self.pointwise = zero_(nn.Conv2d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pointwise(self.act(self.norm(self.depthwise(x))))


class Bottleneck(nn.Module):
    """ResNet bottleneck branch (He et al. 2016): 1×1 down ×4, 3×3, 1×1 up (zero-init, as in
    Goyal et al. 2017), residual."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        hidden = bottleneck_hidden(width)
        self.down = nn.Conv2d(width, hidden, 1, bias=False)
        self.norm1 = group_norm(hidden)
        self.conv = nn.Conv2d(hidden, hidden, 3, padding=1, bias=False)
        self.norm2 = group_norm(hidden)
        self.act = nn.ReLU()
        self.up = zero_(nn.Conv2d(hidden, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.down(x)))
        h = self.act(self.norm2(self.conv(h)))
        return x + self.up(h)


class ShiftConv(nn.Module):
    """Shift (Wu et al. 2018, "Shift: A Zero FLOP, Zero Parameter Alternative to Spatial
    Convolutions"): four channel groups move one pixel left/right/up/down (zero-filled, no
    wrap-around), then a 1×1 conv mixes them; residual with a zero-init output scale. Widths
    below 5 have no shifted group and reduce to a 1×1 conv branch."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        self.group = shift_group(width)
        self.conv = nn.Conv2d(width, width, 1, bias=False)
        self.norm = group_norm(width)
        self.act = nn.ReLU()
        self.scale = ChannelScale(width)

    def shifted(self, x: torch.Tensor) -> torch.Tensor:
        g = self.group
        if g == 0:
            return x
        h, w = x.shape[2], x.shape[3]
        p = F.pad(x[:, : 4 * g], [1, 1, 1, 1])
        return torch.cat(
            [
                p[:, 0:g, 1 : h + 1, 2 : w + 2],  # out[i, j] = x[i, j + 1]
                p[:, g : 2 * g, 1 : h + 1, 0:w],  # out[i, j] = x[i, j - 1]
                p[:, 2 * g : 3 * g, 2 : h + 2, 1 : w + 1],  # out[i, j] = x[i + 1, j]
                p[:, 3 * g : 4 * g, 0:h, 1 : w + 1],  # out[i, j] = x[i - 1, j]
                x[:, 4 * g :],
            ],
            dim=1,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale(self.act(self.norm(self.conv(self.shifted(x)))))


class ShuffleUnit(nn.Module):
    """ShuffleNet unit (Zhang et al. 2018): grouped 1×1 → channel shuffle → depthwise 3×3 →
    grouped 1×1 (zero-init), residual. Groups are 4 or 2 where they divide the width, else 1."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        g = shuffle_groups(width)
        self.groups = g
        self.reduce = nn.Conv2d(width, width, 1, groups=g, bias=False)
        self.norm1 = group_norm(width)
        self.act = nn.ReLU()
        self.depthwise = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.norm2 = group_norm(width)
        self.expand = zero_(nn.Conv2d(width, width, 1, groups=g))

    def shuffle(self, x: torch.Tensor) -> torch.Tensor:
        # (N, g, C/g, H, W) → swap the group axes → flatten: channel i of group j lands at i·g+j.
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.shuffle(self.act(self.norm1(self.reduce(x))))
        return x + self.expand(self.norm2(self.depthwise(h)))


class MixDepthwise(nn.Module):
    """MixConv (Tan & Le 2019): channel groups get depthwise kernels of 3, 5 and 7, then
    GroupNorm → ReLU → pointwise 1×1 (zero-init), residual."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        splits = mixdw_splits(width)
        self.splits = [n for _, n in splits]
        self.convs = nn.ModuleList(
            nn.Conv2d(n, n, k, padding=k // 2, groups=n, bias=False) for k, n in splits
        )
        self.norm = group_norm(width)
        self.act = nn.ReLU()
        self.pointwise = zero_(nn.Conv2d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.splits, dim=1)
        mixed = [conv(parts[i]) for i, conv in enumerate(self.convs)]
        return x + self.pointwise(self.act(self.norm(torch.cat(mixed, dim=1))))


def depthwise(*, width: int) -> nn.Module:
    """Depthwise-separable residual (Howard et al. 2017)."""
    return DepthwiseSeparable(width)


def bottleneck(*, width: int) -> nn.Module:
    """ResNet bottleneck residual (He et al. 2016)."""
    return Bottleneck(width)


def shift(*, width: int) -> nn.Module:
    """Zero-parameter spatial shift + 1×1 conv residual (Wu et al. 2018)."""
    return ShiftConv(width)


def shuffle(*, width: int) -> nn.Module:
    """ShuffleNet channel-shuffle unit (Zhang et al. 2018)."""
    return ShuffleUnit(width)


def mixdw(*, width: int) -> nn.Module:
    """Mixed-kernel depthwise conv residual (Tan & Le 2019)."""
    return MixDepthwise(width)
