"""Exact parameter counts of the transformer blueprints, in plain integer arithmetic.

The plugin module hands these to :class:`~esper_core.contracts.specs.BlueprintSpec` so that the
G0 budget check and ``esper blueprints`` can price a seed without importing torch. Each count is
asserted against the real module in the test-suite, at several widths.
"""

from __future__ import annotations

from esper_core.sdk import check_width

#: Target size of one attention head in the seed blueprints.
SEED_HEAD_DIM = 16
LORA_RANK = 8
LORA_LARGE_RANK = 32


def seed_heads(width: int) -> int:
    """Heads for an attention seed of ``width``: about one per 16 features, dividing ``width``."""
    check_width(width)
    heads = max(1, width // SEED_HEAD_DIM)
    while width % heads:
        heads -= 1
    return heads


def noop_params(width: int) -> int:
    check_width(width)
    return 0


def norm_params(width: int) -> int:
    """LayerNorm weight (the zero-initialised scale) and bias."""
    check_width(width)
    return 2 * width


def lora_params(width: int, rank: int = LORA_RANK) -> int:
    """Down projection A (rank × width) and up projection B (width × rank), no biases."""
    check_width(width)
    return 2 * width * rank


def lora_large_params(width: int) -> int:
    return lora_params(width, LORA_LARGE_RANK)


def attention_params(width: int) -> int:
    """Pre-norm LayerNorm (2d), fused QKV with bias (3d² + 3d), output projection (d² + d)."""
    check_width(width)
    return 4 * width * width + 6 * width


def mlp_params(width: int, expansion: int = 4) -> int:
    """Pre-norm LayerNorm (2d), d → e·d with bias, e·d → d with bias."""
    check_width(width)
    hidden = expansion * width
    return 2 * width + (width * hidden + hidden) + (hidden * width + width)


def mlp_small_params(width: int) -> int:
    return mlp_params(width, 2)
