"""Spatial-convolution variants: asymmetric (14), coord (15), gated (16), reparam (21),
laplacian (23). Each is a residual branch that is exactly zero at init."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from esper_blueprints_cnn.blueprints._layers import ChannelScale, group_norm, zero_
from esper_core.sdk import check_width


class AsymmetricConv(nn.Module):
    """3×1 then 1×3 conv (a factorised 3×3, Szegedy et al. 2016 "Rethinking the Inception
    Architecture") → GroupNorm → ReLU, zero-init output scale, residual."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        self.vertical = nn.Conv2d(width, width, (3, 1), padding=(1, 0), bias=False)
        self.horizontal = nn.Conv2d(width, width, (1, 3), padding=(0, 1), bias=False)
        self.norm = group_norm(width)
        self.act = nn.ReLU()
        self.scale = ChannelScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale(self.act(self.norm(self.horizontal(self.vertical(x)))))


class CoordConv(nn.Module):
    """CoordConv (Liu et al. 2018, "An intriguing failing of convolutional neural networks and
    the CoordConv solution"): two channels holding the row and column coordinate in [-1, 1] are
    appended before a 3×3 conv, so the branch can learn position-dependent features."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        self.conv = nn.Conv2d(width + 2, width, 3, padding=1, bias=False)
        self.norm = group_norm(width)
        self.act = nn.ReLU()
        self.scale = ChannelScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        rows = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device)
        cols = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device)
        coords = torch.stack(
            [rows[:, None].expand(h, w), cols[None, :].expand(h, w)], dim=0
        ).expand(n, 2, h, w)
        features = torch.cat([x, coords], dim=1)
        return x + self.scale(self.act(self.norm(self.conv(features))))


class GatedConv(nn.Module):
    """Gated convolution ``a ⊙ σ(b)`` where one 3×3 conv yields both halves (the GLU of
    Dauphin et al. 2017, applied spatially as in Yu et al. 2019), zero-init output scale."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        self.conv = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.scale = ChannelScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return x + self.scale(features * torch.sigmoid(gate))


class RepConv(nn.Module):
    """RepVGG-style branch (Ding et al. 2021): parallel 3×3 and 1×1 convs, summed, ReLU, with
    the outer residual as the identity branch. The two convs are linear in the input, so after
    training they fold into a single 3×3 conv (:meth:`fused`)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        self.conv3 = nn.Conv2d(width, width, 3, padding=1)
        self.conv1 = nn.Conv2d(width, width, 1)
        self.act = nn.ReLU()
        self.scale = ChannelScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale(self.act(self.conv3(x) + self.conv1(x)))

    @torch.jit.unused
    def fused(self) -> nn.Conv2d:
        """One 3×3 conv equal to ``conv3(x) + conv1(x)`` (the 1×1 kernel padded to the centre)."""
        width = self.conv3.in_channels
        conv = nn.Conv2d(width, width, 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(self.conv3.weight + F.pad(self.conv1.weight, [1, 1, 1, 1]))
            assert conv.bias is not None and self.conv3.bias is not None and self.conv1.bias is not None
            conv.bias.copy_(self.conv3.bias + self.conv1.bias)
        return conv


class LaplacianEdges(nn.Module):
    """A fixed depthwise Laplacian (edge) filter, then a zero-init 1×1 conv that learns how to
    mix the edge maps back in, residual. Only the projection learns: the prior is free."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        self.register_buffer("kernel", lap.expand(width, 1, 3, 3).clone(), persistent=False)
        self.kernel: torch.Tensor  # declared for mypy here: TorchScript rejects a class-level annotation
        self.groups = width
        self.proj = zero_(nn.Conv2d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        edges = F.conv2d(x, self.kernel.to(x.dtype), padding=1, groups=self.groups)
        return x + self.proj(edges)


def asymmetric(*, width: int) -> nn.Module:
    """Factorised 3×1 + 1×3 conv residual (Szegedy et al. 2016)."""
    return AsymmetricConv(width)


def coord(*, width: int) -> nn.Module:
    """CoordConv residual (Liu et al. 2018)."""
    return CoordConv(width)


def gated(*, width: int) -> nn.Module:
    """Gated conv residual (Dauphin et al. 2017; Yu et al. 2019)."""
    return GatedConv(width)


def reparam(*, width: int) -> nn.Module:
    """RepVGG-style re-parameterisable 3×3 + 1×1 residual (Ding et al. 2021)."""
    return RepConv(width)


def laplacian(*, width: int) -> nn.Module:
    """Fixed Laplacian edge-filter branch with a learned 1×1 projection."""
    return LaplacianEdges(width)
