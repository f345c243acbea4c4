"""Blueprint 2: causal multi-head self-attention as a residual seed.

Scaled dot-product attention of Vaswani et al. 2017 ("Attention Is All You Need"), with the
causal mask the host uses: position t attends to positions ≤ t only. An attention seed without
that mask would let every position read the tokens it is meant to predict.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from esper_blueprints_transformer.params import seed_heads


class CausalAttentionSeed(nn.Module):
    """x + W_o · Attn(LN(x)), W_o = 0 at init, so the seed starts as the identity.

    ``heads`` divides ``width``; the default puts about 16 features in each head.
    """

    def __init__(self, *, width: int, heads: int | None = None) -> None:
        super().__init__()
        heads = seed_heads(width) if heads is None else heads
        if heads < 1 or width % heads:
            raise ValueError(f"heads = {heads} must be ≥ 1 and divide width = {width}")
        self.heads = heads
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, d) → q, k, v of shape (B, heads, T, d / heads)."""
        b, t, c = x.size(0), x.size(1), x.size(2)
        qkv = self.qkv(self.norm(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def _merge(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + self.proj(y.transpose(1, 2).reshape(x.size(0), x.size(1), x.size(2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(x)
        return self._merge(x, F.scaled_dot_product_attention(q, k, v, is_causal=True))


def attention(*, width: int) -> nn.Module:
    """Blueprint 2: causal multi-head self-attention, residual, zero-initialised output."""
    return CausalAttentionSeed(width=width)
