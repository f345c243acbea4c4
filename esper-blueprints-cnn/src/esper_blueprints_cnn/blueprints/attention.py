"""Channel and spatial attention seeds: squeeze-and-excitation (2), ECA (17), CBAM spatial
attention (18).

Each multiplies its input by a gate ``2·σ(z)``; the layer producing ``z`` is zero-initialised,
so the gate is exactly 1 (identity) at germination and moves from there.
"""

from __future__ import annotations

import torch
from torch import nn

from esper_blueprints_cnn.blueprints._layers import zero_
from esper_blueprints_cnn.estimates import SPATIAL_ATTENTION_KERNEL, eca_kernel, se_hidden
from esper_core.sdk import check_width


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018, "Squeeze-and-Excitation Networks").

    Global average pool → Linear(C→C/4) → ReLU → Linear(C/4→C) → 2σ, scaling each channel.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        hidden = se_hidden(width)
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.ReLU()
        self.fc2 = zero_(nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc2(self.act(self.fc1(x.mean(dim=(2, 3)))))
        return x * (2.0 * torch.sigmoid(z))[:, :, None, None]


class EfficientChannelAttention(nn.Module):
    """ECA (Wang et al. 2020, "ECA-Net"): a 1-D conv across pooled channels replaces SE's MLP;
    the kernel size adapts to the channel count."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        k = eca_kernel(width)
        self.conv = zero_(nn.Conv1d(1, 1, k, padding=k // 2, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3)).unsqueeze(1)  # (N, 1, C): channels as a sequence
        z = self.conv(pooled).squeeze(1)
        return x * (2.0 * torch.sigmoid(z))[:, :, None, None]


class SpatialAttention(nn.Module):
    """CBAM's spatial attention (Woo et al. 2018): a 7×7 conv over the channel-wise mean and
    max maps gives one gate per pixel, shared by all channels."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_width(width)
        k = SPATIAL_ATTENTION_KERNEL
        self.conv = zero_(nn.Conv2d(2, 1, k, padding=k // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * (2.0 * torch.sigmoid(self.conv(stats)))


def attention(*, width: int) -> nn.Module:
    """Squeeze-and-excitation channel attention (Hu et al. 2018)."""
    return SqueezeExcite(width)


def eca(*, width: int) -> nn.Module:
    """Efficient channel attention (Wang et al. 2020)."""
    return EfficientChannelAttention(width)


def spatial_attention(*, width: int) -> nn.Module:
    """CBAM spatial attention (Woo et al. 2018)."""
    return SpatialAttention(width)
