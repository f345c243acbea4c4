"""Shared fixtures: the registered blueprint specs and a small, fast text task."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from esper_blueprints_transformer import plugin
from esper_core.contracts.specs import BlueprintSpec

BLUEPRINTS: dict[str, BlueprintSpec] = {spec.name: spec for spec in plugin.esper_register_blueprints()}


@pytest.fixture(autouse=True)
def _two_threads() -> None:
    # The suite shares 2 cores with other work; more threads only add contention.
    torch.set_num_threads(2)


@pytest.fixture(params=sorted(BLUEPRINTS))
def spec(request: pytest.FixtureRequest) -> BlueprintSpec:
    return BLUEPRINTS[request.param]


def _perturb(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            if torch.count_nonzero(p) == 0:
                p.normal_(0.0, 0.1)


@pytest.fixture
def perturb() -> Callable[[torch.nn.Module], None]:
    """Give a seed's zero-initialised weights values, as training would, so every path runs."""
    return _perturb
