"""Exact parameter counts and per-pixel costs of the anti-pattern blueprints, without torch.

The plugin registers these as ``BlueprintSpec.param_estimate`` so the catalog prices a
blueprint without importing torch. The size constants here are the single source of truth:
the torch modules import them, so a module and its estimate cannot drift apart silently.
Normalisation layers are ``GroupNorm`` with an affine weight and bias: ``2·C`` parameters.
"""

from __future__ import annotations

from esper_core.sdk import check_width

#: EMA momentum of the momentum dampener (seed 000: "high momentum (0.99)").
MOMENTUM = 0.99
#: Initial value of the correlated-noise injector's learnable noise scale.
NOISE_SIGMA_INIT = 0.01
#: Channel reduction of the asymmetric bottleneck (seed 000: "reduces channels by 8x").
BOTTLENECK_REDUCTION = 8
#: Number of bias-free 1×1 convolutions in the deep linear stack.
DEEP_LINEAR_DEPTH = 8
#: Number of identical branches of the redundant ensemble.
ENSEMBLE_BRANCHES = 4


def bottleneck_hidden(width: int) -> int:
    """Inner width of the asymmetric bottleneck: ``C // 8``, at least one channel."""
    return max(1, check_width(width) // BOTTLENECK_REDUCTION)


def norm_groups(width: int) -> int:
    """GroupNorm groups for ``width`` channels: the largest of 8, 4, 2 that divides it and
    leaves at least two channels per group, else 1.

    Two channels per group keep GroupNorm well defined on a 1×1 feature map with batch 1
    (torch refuses to normalise a single value in training mode).
    """
    c = check_width(width)
    return next((g for g in (8, 4, 2) if c % g == 0 and c // g >= 2), 1)


# --- parameter estimates, one per blueprint (C = width); every one ends in a C-wide LayerScale


def correlated_noise(width: int) -> int:
    # one scalar noise scale σ + LayerScale.
    return 1 + check_width(width)


def asymmetric_bottleneck(width: int) -> int:
    c, h = check_width(width), bottleneck_hidden(width)
    # down 1×1 (C→h, bias) + up 1×1 (h→C, bias) + LayerScale.
    return (c * h + h) + (h * c + c) + c


def momentum_dampener(width: int) -> int:
    # the EMA is a buffer, not a parameter: only the LayerScale learns.
    return check_width(width)


def sigmoid_sandwich(width: int) -> int:
    c = check_width(width)
    return (c * c + c) + c


def gain_amplifier(width: int) -> int:
    # one scalar gain + LayerScale.
    return 1 + check_width(width)


def deep_linear_stack(width: int) -> int:
    c = check_width(width)
    return DEEP_LINEAR_DEPTH * c * c + c


def expensive_identity(width: int) -> int:
    c = check_width(width)
    # two 3×3 convolutions with bias + two GroupNorms + LayerScale.
    return 2 * (9 * c * c + c) + 2 * (2 * c) + c


def redundant_ensemble(width: int) -> int:
    c = check_width(width)
    return ENSEMBLE_BRANCHES * (c * c + c) + c


def kaiming_mismatch(width: int) -> int:
    c = check_width(width)
    return (9 * c * c + c) + c


def division_by_feature(width: int) -> int:
    return check_width(width)


# --- the transformer forms whose layers differ from their CNN twins' (a ``Linear`` where the CNN
# form has a 3×3 convolution, LayerNorm where it has GroupNorm; both norms have 2·C parameters)


def expensive_identity_linear(width: int) -> int:
    c = check_width(width)
    # two Linear layers with bias + two LayerNorms + the (C,) scale.
    return 2 * (c * c + c) + 2 * (2 * c) + c


def kaiming_mismatch_linear(width: int) -> int:
    c = check_width(width)
    return (c * c + c) + c


# --- multiply-accumulates per spatial position (the FLOP cost that "cost without benefit" prices)


def macs_per_pixel(name: str, width: int) -> int:
    """Multiply-accumulates of blueprint ``name`` per output pixel at ``width`` channels.

    Counts convolutions only (elementwise work is O(C) and negligible next to them); a whole
    feature map costs ``macs_per_pixel × H × W`` per sample.
    """
    c = check_width(width)
    costs = {
        "correlated_noise": c,
        "asymmetric_bottleneck": 2 * c * bottleneck_hidden(c),
        "momentum_dampener": c,
        "sigmoid_sandwich": c * c,
        "gain_amplifier": c,
        "deep_linear_stack": DEEP_LINEAR_DEPTH * c * c,
        "expensive_identity": 2 * 9 * c * c,
        "redundant_ensemble": ENSEMBLE_BRANCHES * c * c,
        "kaiming_mismatch": 9 * c * c,
        "division_by_feature": c,
    }
    if name not in costs:
        raise KeyError(f"unknown anti-pattern {name!r}; known: {', '.join(sorted(costs))}")
    return costs[name]
