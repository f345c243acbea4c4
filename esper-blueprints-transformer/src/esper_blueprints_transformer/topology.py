"""How a ``transformer`` slot carries its tensor: ``(batch, sequence, C)`` (C the model width)."""

from __future__ import annotations

from typing import Any


def example_input(*, width: int, size: int, batch: int = 2, generator: Any = None) -> Any:
    """Random inputs for a ``transformer`` slot of model width ``width`` over ``size`` positions."""
    import torch

    return torch.randn(batch, size, width, generator=generator)
