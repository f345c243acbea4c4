"""A weighted sum of registered reward terms, with every term's value kept."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from attrs import frozen

from esper_core.contracts.protocols import RewardContext
from esper_core.contracts.specs import RewardTermSpec
from esper_core.errors import ConfigError, PluginError, UnknownNameError
from esper_core.options import invalid_message


@frozen
class RewardResult:
    total: float
    #: term name -> weighted value
    terms: Mapping[str, float]


class RewardFunction:
    """The terms of one preset, with optional per-term weight overrides."""

    def __init__(self, specs: Iterable[RewardTermSpec], *, preset: str = "shaped",
                 weights: Mapping[str, float] | None = None) -> None:
        specs = list(specs)
        presets = sorted({p for s in specs for p in s.presets})
        if preset not in presets:
            raise UnknownNameError("reward preset", preset, presets)
        by_name = {s.name: s for s in specs}
        for name in weights or {}:
            if name not in by_name:
                raise UnknownNameError("reward term", name, by_name)
        self.preset = preset
        self.weights: dict[str, float] = {s.name: s.presets[preset] for s in specs if preset in s.presets}
        for name, weight in (weights or {}).items():
            if not math.isfinite(weight):
                raise ConfigError(invalid_message("[rewards]", name, weight, "a finite weight"))
            self.weights[name] = float(weight)
        self._specs = {name: by_name[name] for name in self.weights}

    def __call__(self, context: RewardContext) -> RewardResult:
        terms: dict[str, float] = {}
        for name, spec in self._specs.items():
            try:
                value = float(spec.compute(context))
            except Exception as exc:
                raise PluginError(f"reward term {name!r} raised {type(exc).__name__}: {exc}") from exc
            if not math.isfinite(value):
                raise PluginError(f"reward term {name!r} returned a non-finite value {value!r}")
            terms[name] = self.weights[name] * value
        return RewardResult(total=sum(terms.values()), terms=terms)
