"""The ``cnn:pointwise_mlp`` blueprint: a residual MLP applied at every pixel.

A seed in a slot of width ``C`` receives the host's ``(batch, C, H, W)`` activations and returns
the same shape: ``x + W₂ GELU(W₁ x)`` with ``W₁: C → 2C`` and ``W₂: 2C → C`` as 1×1
convolutions — the transformer feed-forward block (Vaswani et al., 2017, "Attention Is All You
Need", §3.3) used as a CNN seed. ``W₂`` starts at zero, so the seed is the identity when it is
germinated.
"""

from __future__ import annotations

from torch import Tensor, nn

from esper_example_plugin.plugin import EXPANSION


class PointwiseMLP(nn.Module):
    def __init__(self, width: int, expansion: int = EXPANSION) -> None:
        super().__init__()
        hidden = expansion * width
        self.up = nn.Conv2d(width, hidden, kernel_size=1)
        self.act = nn.GELU()
        self.down = nn.Conv2d(hidden, width, kernel_size=1)
        nn.init.zeros_(self.down.weight)
        assert self.down.bias is not None  # Conv2d's default bias=True
        nn.init.zeros_(self.down.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.down(self.act(self.up(x)))


def pointwise_mlp(*, width: int) -> nn.Module:
    """Build the seed for a slot of ``width`` channels."""
    return PointwiseMLP(width)
