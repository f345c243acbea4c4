"""The LayerScale every anti-pattern ends with."""

from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """A learnable per-channel output scale ``γ`` of shape ``(1, C, 1, 1)`` (Touvron et al. 2021).

    Seed 000 ends every anti-pattern with one and notes each time that it "won't save it": a
    scale multiplies the damage, it does not remove it. ``init`` is 1 unless a blueprint's
    document formula needs another value, so the failure stays visible in the output.
    """

    def __init__(self, width: int, init: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((1, width, 1, 1), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma
