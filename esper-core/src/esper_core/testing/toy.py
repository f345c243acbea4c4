"""A tiny "toy" topology for fast tests of the engine and of plugins: an MLP host cut into
segments, a Gaussian-clusters classification task, and two residual blueprints.

Register it in-process with ``load_plugins(extra=[("toy", esper_core.testing.toy)])``; it is
not an installed plugin, so it never appears in a user's catalog.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from attrs import field, frozen
from torch import Tensor, nn

from esper_core.contracts.protocols import InjectionPoint
from esper_core.contracts.run_defaults import RunDefaults, TrainingSettings
from esper_core.contracts.settings import GateThresholds, LifecycleSettings, TopologyDefaults
from esper_core.contracts.specs import BlueprintSpec, TaskSpec
from esper_core.markers import hookimpl
from esper_core.options import as_int, parse_options
from esper_core.sdk import generator_seed

TOPOLOGY = "toy"
TOY_DEFAULTS = TopologyDefaults(
    gates=GateThresholds(g2_min_epochs=1, g2_gradient_ratio=0.0, g2_min_improvement=-100.0, g3_min_epochs=1),
    lifecycle=LifecycleSettings(blending_epochs=2),
)


class ToyHost(nn.Module):
    """``features → width`` MLP with injection points after each hidden layer."""

    def __init__(self, *, features: int = 8, width: int = 16, classes: int = 4, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Linear(features, width), nn.ReLU())]
        layers += [nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth - 1)]
        layers.append(nn.Linear(width, classes))
        self.segments = nn.ModuleList(layers)
        self.injection_points = tuple(InjectionPoint(f"hidden{i + 1}", width) for i in range(depth))

    def forward(self, x: Tensor) -> Tensor:
        for segment in self.segments:
            x = segment(x)
        return x


class ResidualLinear(nn.Module):
    """x + W x with W zero-initialised: identity at germination."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.linear(x)


def residual_linear(*, width: int) -> nn.Module:
    return ResidualLinear(width)


def identity(*, width: int) -> nn.Module:
    return nn.Identity()


@frozen(kw_only=True)
class ToyOptions:
    """The ``[task]`` options of ``toy``."""

    # as_int(...) is a call, and mypy's attrs plugin reads only named functions and lambdas as
    # converters (hence the ignores); __init__ takes Any for these fields either way.
    batch_size: int = field(default=32, converter=as_int(1))  # type: ignore[misc]
    train_size: int = field(default=256, converter=as_int(1))  # type: ignore[misc]
    val_size: int = field(default=128, converter=as_int(1))  # type: ignore[misc]
    features: int = field(default=8, converter=as_int(1))  # type: ignore[misc]
    classes: int = field(default=4, converter=as_int(2))  # type: ignore[misc]
    width: int = field(default=16, converter=as_int(1))  # type: ignore[misc]


def read_toy_options(*, options: Mapping[str, Any]) -> ToyOptions:
    """``TaskSpec.read_options`` of ``toy``: its options, defaults filled in."""
    return parse_options(ToyOptions, options, owner="task 'toy'")


class ToyTask:
    """Gaussian clusters: ``classes`` centres in ``features`` dimensions, noisy samples."""

    name = "toy"
    topology = TOPOLOGY

    def __init__(self, *, seed: int, device: str, options: Mapping[str, Any]) -> None:
        opts = read_toy_options(options=options)
        self.batch_size, self.features = opts.batch_size, opts.features
        self.classes, self.width = opts.classes, opts.width
        self.device = torch.device(device)
        self.seed = seed
        g = torch.Generator().manual_seed(seed)
        centres = torch.randn(self.classes, self.features, generator=g) * 1.5

        def sample(n: int) -> tuple[Tensor, Tensor]:
            y = torch.randint(0, self.classes, (n,), generator=g)
            x = centres[y] + torch.randn(n, self.features, generator=g)
            return x.to(self.device), y.to(self.device)

        self.train = sample(opts.train_size)
        self.val = sample(opts.val_size)
        self.test = sample(128)

    def build_host(self) -> nn.Module:
        return ToyHost(features=self.features, width=self.width, classes=self.classes).to(self.device)

    def _batches(self, data: tuple[Tensor, Tensor], order: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        x, y = data
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield x[idx], y[idx]

    def train_batches(self, *, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        g = torch.Generator().manual_seed(generator_seed(self.seed, epoch))
        return self._batches(self.train, torch.randperm(len(self.train[1]), generator=g).to(self.device))

    def val_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self._batches(self.val, torch.arange(len(self.val[1]), device=self.device))

    def test_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self._batches(self.test, torch.arange(len(self.test[1]), device=self.device))

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.cross_entropy(output, target)

    def correct(self, output: Tensor, target: Tensor) -> tuple[Tensor, int]:
        return (output.argmax(dim=-1) == target).sum(), int(target.numel())

    def correct_per_example(self, output: Tensor, target: Tensor) -> Tensor:
        return (output.argmax(dim=-1) == target).float()


@hookimpl
def esper_register_blueprints() -> list[BlueprintSpec]:
    return [
        BlueprintSpec(name="noop", topology=TOPOLOGY, factory=identity, param_estimate=lambda w: 0,
                      description="identity", identity_at_init=True),
        BlueprintSpec(name="residual_linear", topology=TOPOLOGY, factory=residual_linear,
                      param_estimate=lambda w: w * w + w, description="zero-initialised residual linear",
                      identity_at_init=True),
    ]


@hookimpl
def esper_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(name="toy", topology=TOPOLOGY, factory=ToyTask, description="Gaussian clusters (tests)",
                 read_options=read_toy_options,
                 defaults=RunDefaults(epochs=6, blueprints=("residual_linear",),
                                      training=TrainingSettings(batch_size=32, lr=1e-2, seed_lr=1e-2)),
                 kasmina=TOY_DEFAULTS),
    ]
