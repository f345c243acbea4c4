"""The blueprint token vocabulary (DESIGN §9), torch-free.

A blueprint is a sequence of these tokens. Widths are relative to the slot width ``C`` the
blueprint is built for (``OUT_IN`` = C, ``OUT_D4`` = max(1, C // 4) ...) or absolute
(``OUT_16``), so one sequence builds a module for any slot.
"""

from __future__ import annotations

from collections.abc import Callable

#: A structural group opens with the first token and closes with the second.
RES_START, RES_END = "RES_START", "RES_END"
GATE_START, GATE_END = "GATE_START", "GATE_END"

LINEAR, CONV = "LINEAR", "CONV"
NORM, SCALE, IDENTITY = "NORM", "SCALE", "IDENTITY"
POOL_GLOBAL, POOL_AVG3, POOL_MAX3 = "POOL_GLOBAL", "POOL_AVG3", "POOL_MAX3"
DEPTHWISE, DILATE_2, ZERO_INIT = "DEPTHWISE", "DILATE_2", "ZERO_INIT"

ACTIVATIONS: tuple[str, ...] = ("RELU", "GELU", "TANH", "SIGMOID", "SILU")
KERNELS: dict[str, int] = {"KERNEL_1": 1, "KERNEL_3": 3, "KERNEL_5": 5, "KERNEL_7": 7}

#: Output-width tokens: a function of the slot width ``C``.
WIDTHS: dict[str, Callable[[int], int]] = {
    "OUT_IN": lambda c: c,
    "OUT_D4": lambda c: max(1, c // 4),
    "OUT_D2": lambda c: max(1, c // 2),
    "OUT_X2": lambda c: 2 * c,
    "OUT_X4": lambda c: 4 * c,
    "OUT_8": lambda c: 8,
    "OUT_16": lambda c: 16,
    "OUT_32": lambda c: 32,
}

POOLS: tuple[str, ...] = (POOL_GLOBAL, POOL_AVG3, POOL_MAX3)
GROUP_OPEN: dict[str, str] = {RES_START: RES_END, GATE_START: GATE_END}
GROUP_CLOSE: frozenset[str] = frozenset(GROUP_OPEN.values())
LAYERS: tuple[str, ...] = (LINEAR, CONV)
MODIFIERS: tuple[str, ...] = (DEPTHWISE, DILATE_2, ZERO_INIT)

#: Every grammar token, in a fixed order (generators index their vocabularies with it).
VOCABULARY: tuple[str, ...] = (
    IDENTITY, RES_START, RES_END, GATE_START, GATE_END, LINEAR, CONV, *KERNELS, *WIDTHS,
    *MODIFIERS, NORM, SCALE, *ACTIVATIONS, *POOLS,
)
