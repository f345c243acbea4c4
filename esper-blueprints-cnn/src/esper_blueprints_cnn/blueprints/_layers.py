"""Small building blocks shared by the CNN blueprints."""

from __future__ import annotations

import torch
from torch import nn

from esper_blueprints_cnn.estimates import norm_groups


def group_norm(width: int) -> nn.GroupNorm:
    """GroupNorm (Wu & He 2018): batch-independent, so a seed behaves the same in train and
    eval mode and under the counterfactual pass, for any batch and spatial size."""
    return nn.GroupNorm(norm_groups(width), width)


def zero_(module: nn.Module) -> nn.Module:
    """Zero a layer's weight and bias, so the residual branch it ends starts at exactly 0."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ChannelScale(nn.Module):
    """A learnable per-channel output scale, zero at init.

    Ending a residual branch with it makes the block an exact identity at germination while
    the scale itself still receives gradient (ReZero, Bachlechner et al. 2021; LayerScale,
    Touvron et al. 2021). Used where the branch ends in a ReLU: zeroing a norm's affine weight
    before a ReLU would put every pre-activation at 0, where ReLU passes no gradient.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, width, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight
