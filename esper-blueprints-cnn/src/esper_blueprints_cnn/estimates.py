"""Exact parameter counts of the CNN blueprints, in pure Python (no torch).

The plugin registers these as ``BlueprintSpec.param_estimate`` so the catalog (and G0's
parameter-budget check) can price a blueprint without importing torch. The size helpers
(``se_hidden``, ``eca_kernel`` ...) are the single source of truth: the torch modules import
them, so a module and its estimate cannot drift apart silently. The conformance tests compare
every estimate with ``sum(p.numel() for p in module.parameters())``.

Normalisation layers are ``GroupNorm`` with an affine weight and bias: ``2·C`` parameters
whatever the group count.
"""

from __future__ import annotations

import math

from esper_core.sdk import check_width

#: MixConv kernel sizes, smallest first (Tan & Le 2019 use 3, 5, 7, 9 on wide layers).
MIXDW_KERNELS: tuple[int, ...] = (3, 5, 7)
#: CBAM spatial-attention kernel (Woo et al. 2018).
SPATIAL_ATTENTION_KERNEL = 7


def norm_groups(width: int) -> int:
    """GroupNorm groups for ``width`` channels: the largest of 8, 4, 2, 1 that divides it."""
    return next(g for g in (8, 4, 2, 1) if width % g == 0)


def se_hidden(width: int) -> int:
    """Squeeze-and-excitation hidden size: reduction 4, at least one unit."""
    return max(1, width // 4)


def bottleneck_hidden(width: int) -> int:
    """Bottleneck inner width: 4× down, at least one channel."""
    return max(1, width // 4)


def eca_kernel(width: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive 1-D kernel size ``|log2(C)/γ + b/γ|`` rounded up to odd (Wang et al. 2020)."""
    t = int(abs((math.log2(width) + b) / gamma))
    return t if t % 2 else t + 1


def shuffle_groups(width: int) -> int:
    """Groups of the ShuffleNet 1×1 convolutions: 4 or 2 where they divide ``width``, else 1."""
    return next(g for g in (4, 2, 1) if width % g == 0)


def mixdw_splits(width: int) -> tuple[tuple[int, int], ...]:
    """``(kernel, channels)`` groups of MixConv: equal splits, the first takes the remainder.

    Fewer channels than kernels uses only the smallest kernels (one channel each).
    """
    kernels = MIXDW_KERNELS[: min(width, len(MIXDW_KERNELS))]
    base, rem = divmod(width, len(kernels))
    return tuple((k, base + (rem if i == 0 else 0)) for i, k in enumerate(kernels))


def shift_group(width: int) -> int:
    """Channels per shifted direction (4 directions); the rest stay in place (Wu et al. 2018)."""
    return width // 5


# --- the estimates, one per blueprint (C = width) -------------------------------------------


def noop(width: int) -> int:
    check_width(width)
    return 0


def conv_light(width: int) -> int:
    # 3×3 conv (no bias: a norm follows) + GroupNorm + per-channel output scale.
    c = check_width(width)
    return 9 * c * c + 2 * c + c


def attention(width: int) -> int:
    # Linear C→h and h→C, both with bias.
    c = check_width(width)
    h = se_hidden(c)
    return c * h + h + h * c + c


def norm(width: int) -> int:
    # GroupNorm (affine) + per-channel output scale.
    c = check_width(width)
    return 2 * c + c


def depthwise(width: int) -> int:
    # depthwise 3×3 (no bias) + GroupNorm + pointwise 1×1 with bias.
    c = check_width(width)
    return 9 * c + 2 * c + c * c + c


def bottleneck(width: int) -> int:
    # 1×1 down (no bias) + GN + 3×3 (no bias) + GN + 1×1 up with bias.
    c = check_width(width)
    h = bottleneck_hidden(c)
    return c * h + 2 * h + 9 * h * h + 2 * h + h * c + c


def conv_small(width: int) -> int:
    c = check_width(width)
    return c * c + c


def conv_heavy(width: int) -> int:
    return 2 * conv_light(width)


def dilated(width: int) -> int:
    return conv_light(width)


def asymmetric(width: int) -> int:
    # 3×1 and 1×3 convs (no bias) + GN + per-channel output scale.
    c = check_width(width)
    return 3 * c * c + 3 * c * c + 2 * c + c


def coord(width: int) -> int:
    # 3×3 conv over C + 2 coordinate channels (no bias) + GN + per-channel output scale.
    c = check_width(width)
    return 9 * (c + 2) * c + 2 * c + c


def gated(width: int) -> int:
    # one 3×3 conv C→2C with bias (feature and gate halves) + per-channel output scale.
    c = check_width(width)
    return 9 * c * 2 * c + 2 * c + c


def eca(width: int) -> int:
    # one bias-free 1-D conv over channels.
    return eca_kernel(check_width(width))


def spatial_attention(width: int) -> int:
    # k×k conv over [mean, max] → one map, with bias; independent of C.
    check_width(width)
    k = SPATIAL_ATTENTION_KERNEL
    return 2 * k * k + 1


def shift(width: int) -> int:
    # 1×1 conv (no bias) + GN + per-channel output scale.
    c = check_width(width)
    return c * c + 2 * c + c


def shuffle(width: int) -> int:
    # grouped 1×1 (no bias) + GN + depthwise 3×3 (no bias) + GN + grouped 1×1 with bias.
    c = check_width(width)
    g = shuffle_groups(c)
    return c * c // g + 2 * c + 9 * c + 2 * c + c * c // g + c


def reparam(width: int) -> int:
    # 3×3 and 1×1 convs with bias + per-channel output scale.
    c = check_width(width)
    return 9 * c * c + c + c * c + c + c


def mixdw(width: int) -> int:
    # depthwise k×k per split (no bias) + GN + pointwise 1×1 with bias.
    c = check_width(width)
    return sum(k * k * n for k, n in mixdw_splits(c)) + 2 * c + c * c + c


def laplacian(width: int) -> int:
    # the Laplacian kernel is a buffer; only the 1×1 projection (with bias) learns.
    c = check_width(width)
    return c * c + c
