"""Deceptive patterns (indices 30–31): seem helpful, cost far more than they give."""

from __future__ import annotations

import torch
from torch import nn

from esper_antipatterns.blueprints._layers import LayerScale
from esper_antipatterns.estimates import ENSEMBLE_BRANCHES, norm_groups
from esper_core.sdk import check_width


class ExpensiveIdentity(nn.Module):
    """Index 30: conv 3×3 (Dirac) → GroupNorm → ReLU → conv 3×3 (zero) → GroupNorm, no residual.

    Why it is bad: this is a residual block with its skip connection removed. Two 3×3
    convolutions and two norms (``18·C²`` multiply-accumulates per pixel) buy nothing a plain
    pass-through would not: the initialisation copied from residual practice (Dirac first
    conv, zero-initialised last conv) is meant to make the *branch* vanish, but with no skip
    the whole output is the vanished branch — exactly 0 at germination — and every gradient
    must travel the full path. High cost, no accuracy benefit.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.conv1 = nn.Conv2d(width, width, kernel_size=3, padding=1)
        nn.init.dirac_(self.conv1.weight)
        assert self.conv1.bias is not None  # Conv2d's default bias=True
        nn.init.zeros_(self.conv1.bias)
        self.norm1 = nn.GroupNorm(norm_groups(width), width)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        assert self.conv2.bias is not None
        nn.init.zeros_(self.conv2.bias)
        self.norm2 = nn.GroupNorm(norm_groups(width), width)
        self.scale = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        # Deliberately no "+ x": the residual connection this block was designed around.
        return self.scale(self.norm2(self.conv2(h)))


class RedundantEnsemble(nn.Module):
    """Index 31: the mean of four identical 1×1 conv branches that differ only in their init.

    Why it is bad: every branch sees the same input and, through the mean, the same gradient,
    so every branch gets the same update: the differences between branches never change from
    their random initial values while the shared update grows, and the branches become ever
    more correlated. The mean of linear branches is one linear map — four times the
    parameters and compute for the capacity of one.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.branches = nn.ModuleList(
            [nn.Conv2d(width, width, kernel_size=1) for _ in range(ENSEMBLE_BRANCHES)]
        )
        self.scale = LayerScale(width)

    def branch_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each branch's output, for diagnostics (how correlated the ensemble members are)."""
        return [branch(x) for branch in self.branches]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(torch.stack(self.branch_outputs(x)).mean(dim=0))
