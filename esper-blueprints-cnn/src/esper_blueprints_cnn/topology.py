"""How a ``cnn`` slot carries its tensor: ``(batch, C, height, width)`` (NCHW, C channels)."""

from __future__ import annotations

from typing import Any


def example_input(*, width: int, size: int, batch: int = 2, generator: Any = None) -> Any:
    """Random inputs for a ``cnn`` slot of ``width`` channels, ``size`` × ``size`` pixels."""
    import torch

    return torch.randn(batch, width, size, size, generator=generator)
