"""Test helpers: a tiny segmented host, toy blueprints, data and a model factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from esper_core.builtin.plugin import esper_register_alpha_schedules, esper_register_gates
from esper_core.contracts import (
    NEXT_STAGE,
    BlueprintSpec,
    GateThresholds,
    InjectionPoint,
    LifecycleSettings,
    SeedStage,
)
from esper_core.kasmina import GateSuite, MorphogeneticModel

WIDTH = 8
N_IN = 4
N_OUT = 3


class TinyHost(nn.Module):
    """Linear segments with ``n_points`` injection points of width ``WIDTH``."""

    def __init__(self, n_points: int = 2, *, norm: bool = False) -> None:
        super().__init__()
        self.injection_points = tuple(InjectionPoint(f"p{i}", WIDTH) for i in range(n_points))
        segs: list[nn.Module] = [nn.Sequential(nn.Linear(N_IN, WIDTH), nn.ReLU())]
        for _ in range(n_points - 1):
            layers: list[nn.Module] = [nn.Linear(WIDTH, WIDTH)]
            if norm:
                layers.append(nn.BatchNorm1d(WIDTH))
            layers.append(nn.ReLU())
            segs.append(nn.Sequential(*layers))
        segs.append(nn.Linear(WIDTH, N_OUT))
        self.segments = nn.ModuleList(segs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for seg in self.segments:
            x = seg(x)
        return x


class ResidualLinear(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lin = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.lin(x)


def linear_blueprint(name: str = "lin", topology: str = "cnn",
                     factory: Callable[..., nn.Module] | None = None) -> BlueprintSpec:
    return BlueprintSpec(
        name=name, topology=topology,
        factory=factory or (lambda *, width: ResidualLinear(width)),
        param_estimate=lambda w: w * w + w, description="residual linear (test)")


PERMISSIVE = GateThresholds(g2_min_epochs=0, g2_min_improvement=-1000.0, g2_gradient_ratio=0.0,
                            g3_min_alpha=0.0, g3_min_epochs=0, g4_window=1,
                            g5_min_contribution=-1000.0)


def build_model(host: nn.Module | None = None, **overrides: Any) -> MorphogeneticModel:
    events = overrides.pop("events", None)
    kwargs: dict[str, Any] = dict(
        slots=None,
        topology="cnn",
        lifecycle=LifecycleSettings(),
        thresholds=GateThresholds(),
        gates=GateSuite.from_specs(esper_register_gates(), "cnn"),
        alpha_schedules={s.name: s.factory for s in esper_register_alpha_schedules()},
        emit=events.append if events is not None else None,
    )
    kwargs.update(overrides)
    return MorphogeneticModel(host if host is not None else TinyHost(), **kwargs)


def set_stage(model: MorphogeneticModel, name: str, stage: SeedStage, *, epoch: int = 0,
              blueprint: BlueprintSpec | None = None) -> None:
    """Walk a slot along the happy path to ``stage`` without gates (test set-up)."""
    slot = model.slot(name)
    if slot.stage is SeedStage.DORMANT:
        result = model.germinate(name, blueprint or linear_blueprint(), epoch=epoch)
        assert result.passed, result.reason
    while slot.stage is not stage:
        model._transition(slot, NEXT_STAGE[slot.stage], epoch=epoch, reason="test")


def toy_data(n_batches: int = 4, batch: int = 16, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(N_IN, N_OUT, generator=g)
    out = []
    for _ in range(n_batches):
        x = torch.randn(batch, N_IN, generator=g)
        out.append((x, (x @ w).argmax(dim=1)))
    return out


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(output, target)


def correct_fn(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
    return (output.argmax(dim=1) == target).sum(), int(target.numel())
