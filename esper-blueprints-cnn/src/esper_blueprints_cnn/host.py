"""The CNN host: a small conv net cut into segments at its injection points (DESIGN §4).

``segments[i]`` is block ``i+1`` (conv → BatchNorm → ReLU → pool); the injection point
``block{i+1}`` sits right after it with that block's channel count as its width; the last
segment is the classifier head (global average pool + linear). The default host (8/16/32
channels, ~6.4k parameters) is deliberately small so that it plateaus and growth has
something to do.
"""

from __future__ import annotations

import itertools
from typing import cast

import torch
from attrs import field, frozen, validators
from torch import nn

from esper_blueprints_cnn.converters import to_widths
from esper_core.contracts.protocols import InjectionPoint

POOLS = ("max", "avg", "none")


def _odd_kernel(instance: object, attribute: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 == 0:
        raise ValueError(f"kernel_size must be an odd positive integer, got {value!r}")


@frozen(kw_only=True)
class HostConfig:
    """Architecture of a :class:`CNNHost`."""

    #: Output channels of each block; one injection point per block.
    widths: tuple[int, ...] = field(default=(8, 16, 32), converter=to_widths)
    kernel_size: int = field(default=3, validator=_odd_kernel)
    #: Spatial pooling at the end of each block (2×2, stride 2), or none.
    pool: str = field(default="max", validator=validators.in_(POOLS))
    num_classes: int = field(default=10, validator=[validators.instance_of(int), validators.ge(2)])
    in_channels: int = field(default=3, validator=[validators.instance_of(int), validators.ge(1)])

    @property
    def parameter_count(self) -> int:
        """Parameters of the host this builds, counted without building it: each block's
        convolution (no bias) and BatchNorm scale and shift, then the classifier's linear layer."""
        chans = (self.in_channels, *self.widths)
        blocks = sum(self.kernel_size**2 * c_in * c_out + 2 * c_out for c_in, c_out in itertools.pairwise(chans))
        return blocks + self.widths[-1] * self.num_classes + self.num_classes


def conv_block(c_in: int, c_out: int, *, kernel_size: int, pool: str) -> nn.Sequential:
    """conv (no bias: BatchNorm follows) → BatchNorm → ReLU → optional 2×2 pool."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool == "max":
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    elif pool == "avg":
        layers.append(nn.AvgPool2d(2, ceil_mode=True))
    return nn.Sequential(*layers)


def classifier_head(width: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(width, num_classes))


class CNNHost(nn.Module):
    """A :class:`~esper_core.contracts.protocols.SegmentedHost` for images.

    ``forward(x)`` runs the segments in order; Kasmina instead calls the segments itself and
    puts a seed slot between them. Block ``i`` has injection point ``block{i}``.
    """

    def __init__(self, config: HostConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else HostConfig()
        cfg = self.config
        chans = (cfg.in_channels, *cfg.widths)
        blocks = [
            conv_block(chans[i], chans[i + 1], kernel_size=cfg.kernel_size, pool=cfg.pool)
            for i in range(len(cfg.widths))
        ]
        self.segments = nn.ModuleList([*blocks, classifier_head(cfg.widths[-1], cfg.num_classes)])
        self.injection_points: tuple[InjectionPoint, ...] = tuple(
            InjectionPoint(f"block{i + 1}", w) for i, w in enumerate(cfg.widths)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for segment in self.segments:
            x = segment(x)
        return x

    def sequential(self) -> nn.Sequential:
        """The same layers (shared, not copied) as one flat ``nn.Sequential``."""
        # Every segment is an nn.Sequential (conv_block, classifier_head).
        return nn.Sequential(*(layer for segment in self.segments for layer in cast(nn.Sequential, segment)))
