"""Blending schedules: α as a function of epochs spent blending (DESIGN §4).

Each factory returns a small frozen callable ``k -> α`` with ``α = 0`` for ``k ≤ 0`` and
``α = 1`` for ``k ≥ T``, monotone non-decreasing in between. Pure Python: the lifecycle calls
these once per epoch, so there is nothing to gain from tensors and the module stays torch-free.
"""

from __future__ import annotations

import math

from attrs import field, frozen

from esper_core.errors import ConfigError

#: Below this temperature the tanh schedule is treated as a step (avoids dividing by zero).
MIN_TEMPERATURE = 1e-6


def _check(total_epochs: int, temperature: float) -> None:
    if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs < 1:
        raise ConfigError(
            f"alpha schedule total_epochs must be an integer ≥ 1, got {total_epochs!r}"
        )
    if not isinstance(temperature, int | float) or not temperature >= 0:
        raise ConfigError(f"alpha schedule temperature must be a number ≥ 0, got {temperature!r}")


@frozen
class TanhSchedule:
    """α(k) = ½(1 + tanh(½(k − T/2)/temp)) for 0 < k < T; 0 at k ≤ 0 and 1 at k ≥ T.

    The ends are clamped, so with a large temperature α jumps at k = 0 and k = T. As the
    temperature goes to 0 the curve becomes an instant switch at k = T/2 (α = 0 before, ½ exactly
    at T/2, 1 after); temperatures below :data:`MIN_TEMPERATURE` are evaluated as that switch
    instead of dividing by (almost) zero.
    """

    total_epochs: int
    temperature: float = field(converter=float)

    def __call__(self, k: float) -> float:
        t = self.total_epochs
        if k <= 0:
            return 0.0
        if k >= t:
            return 1.0
        centred = k - t / 2
        if self.temperature < MIN_TEMPERATURE:
            return 0.5 if centred == 0 else float(centred > 0)
        return 0.5 * (1.0 + math.tanh(0.5 * centred / self.temperature))


@frozen
class LinearSchedule:
    """α(k) = k / T, clamped to [0, 1]."""

    total_epochs: int

    def __call__(self, k: float) -> float:
        return min(1.0, max(0.0, k / self.total_epochs))


@frozen
class CosineSchedule:
    """α(k) = ½(1 − cos(πk/T)), clamped to [0, 1] (a smooth start and finish)."""

    total_epochs: int

    def __call__(self, k: float) -> float:
        if k <= 0:
            return 0.0
        if k >= self.total_epochs:
            return 1.0
        return 0.5 * (1.0 - math.cos(math.pi * k / self.total_epochs))


def tanh_schedule(*, total_epochs: int = 5, temperature: float = 1.0) -> TanhSchedule:
    """The default schedule; see :class:`TanhSchedule` (small ``temperature`` → step at T/2)."""
    _check(total_epochs, temperature)
    return TanhSchedule(total_epochs, temperature)


def linear_schedule(*, total_epochs: int = 5, temperature: float = 1.0) -> LinearSchedule:
    """α = k/T. ``temperature`` is accepted (every schedule gets the same options) and ignored."""
    _check(total_epochs, temperature)
    return LinearSchedule(total_epochs)


def cosine_schedule(*, total_epochs: int = 5, temperature: float = 1.0) -> CosineSchedule:
    """α = ½(1 − cos(πk/T)). ``temperature`` is accepted and ignored."""
    _check(total_epochs, temperature)
    return CosineSchedule(total_epochs)
