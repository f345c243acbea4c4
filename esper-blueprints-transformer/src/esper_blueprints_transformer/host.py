"""GPTHost: a small pre-norm GPT cut into segments at its seed slots.

Architecture as GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask
Learners"): learned token + position embeddings, pre-norm blocks of causal multi-head attention
(Vaswani et al. 2017) and a 4× GELU MLP, a final LayerNorm and an LM head tied to the token
embedding (Press & Wolf 2017).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from esper_blueprints_transformer.config import GPTConfig
from esper_core.contracts.protocols import InjectionPoint


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t only attends to positions ≤ t."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.size(0), x.size(1), x.size(2)
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, c // self.n_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, 4 * config.d_model)
        self.proj = nn.Linear(4 * config.d_model, config.d_model)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Embedding(nn.Module):
    """Token + learned position embedding of a (B, T) index tensor."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.context = config.context
        self.tok = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = nn.Embedding(config.context, config.d_model)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.size(1)
        if t > self.context:
            raise ValueError(f"sequence length {t} exceeds the host's context of {self.context}")
        pos = torch.arange(t, device=idx.device)
        return self.drop(self.tok(idx) + self.pos(pos))


class LMHead(nn.Module):
    """Final LayerNorm and the vocabulary projection, whose weight is the token embedding's."""

    def __init__(self, config: GPTConfig, embedding: nn.Embedding) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        # Tie by sharing the Parameter object: one tensor, one gradient, counted once by
        # GPTHost.parameters(), and deepcopy/state_dict round-trips keep the two names bound.
        self.head.weight = embedding.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.ln(x))


class GPTHost(nn.Module):
    """A :class:`~esper_core.contracts.protocols.SegmentedHost` GPT.

    ``segments[0]`` embeds and runs the first ``layers_per_point`` blocks, each following segment
    runs the next group of blocks, and the last one is the final LayerNorm + tied LM head. An
    injection point of width ``d_model`` sits after every group: ``layer1``, ``layer2`` ...
    ``forward(idx)`` maps (B, T) token ids to (B, T, vocab) logits.
    """

    def __init__(self, config: GPTConfig | None = None) -> None:
        super().__init__()
        self.config = config or GPTConfig()
        cfg = self.config
        self.injection_points: tuple[InjectionPoint, ...] = tuple(
            InjectionPoint(name, cfg.d_model) for name in cfg.point_names
        )
        embedding = Embedding(cfg)
        blocks = [Block(cfg) for _ in range(cfg.n_layers)]
        groups = [
            blocks[i : i + cfg.layers_per_point] for i in range(0, cfg.n_layers, cfg.layers_per_point)
        ]
        segments: list[nn.Module] = [nn.Sequential(embedding, *groups[0])]
        segments += [nn.Sequential(*group) for group in groups[1:]]
        segments.append(LMHead(cfg, embedding.tok))
        self.segments = nn.ModuleList(segments)
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2 initialisation: N(0, 0.02) everywhere, residual output projections scaled by
        # 1/√(2·n_layers) so the residual stream's variance does not grow with depth.
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                std = 0.02
                if isinstance(module, nn.Linear) and name.endswith(".proj"):
                    std = 0.02 / math.sqrt(2 * self.config.n_layers)
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = idx
        for segment in self.segments:
            x = segment(x)
        return x
