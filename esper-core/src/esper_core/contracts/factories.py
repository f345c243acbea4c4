"""The call signatures of the factories a spec holds, and the blueprint generator's interface.

A spec's factory is any callable with the keyword arguments below (a function, a class, a
``lazy("pkg.module:attr")`` reference); the engine always calls it with keywords. Torch-free:
torch types appear only for type checkers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from torch import nn

    from esper_core.contracts.protocols import (
        AlphaSchedule,
        Observer,
        Policy,
        PolicyContext,
        PolicyTrainer,
        PolicyTrainingContext,
        Sink,
        Task,
    )
    from esper_core.contracts.seeds import ObservedModel


class BlueprintFactory(Protocol):
    """``BlueprintSpec.factory``: the seed module for a slot of ``width`` channels/features."""

    def __call__(self, *, width: int) -> nn.Module: ...


class TaskFactory(Protocol):
    """``TaskSpec.factory``: one episode's task, built from the episode's seed."""

    def __call__(self, *, seed: int, device: str, options: Mapping[str, Any]) -> Task: ...


class OptionsReader(Protocol):
    """``TaskSpec.read_options`` and ``PolicySpec.read_options``: the value of every option the
    component uses for ``options`` (its config table), defaults filled in, as an attrs instance
    or a mapping; raises ``ConfigError`` for a bad table. It builds nothing."""

    def __call__(self, *, options: Mapping[str, Any]) -> Any: ...


class PolicyFactory(Protocol):
    """``PolicySpec.factory``: a controller for the episodes ``context`` describes."""

    def __call__(self, *, context: PolicyContext) -> Policy: ...


class PolicyTrainerFactory(Protocol):
    """``PolicySpec.trainer``: validates the training options and returns the trainer, before
    the run directory is written."""

    def __call__(self, *, context: PolicyTrainingContext) -> PolicyTrainer: ...


class SinkFactory(Protocol):
    """``SinkSpec.factory``: a telemetry sink writing under ``run_dir`` (None: no run directory)."""

    def __call__(self, *, run_dir: Path | None, options: Mapping[str, Any]) -> Sink: ...


class ObserverFactory(Protocol):
    """``ObserverSpec.factory``: an observer of one episode's model."""

    def __call__(self, *, model: ObservedModel, options: Mapping[str, Any]) -> Observer: ...


class AlphaScheduleFactory(Protocol):
    """``AlphaScheduleSpec.factory``: the blending schedule over ``total_epochs``."""

    def __call__(self, *, total_epochs: int, **options: Any) -> AlphaSchedule: ...


class EvaluationView(Protocol):
    """The Crucible's verdict on one candidate, as a generator reads it
    (``esper_core.sdk.Evaluation``)."""

    @property
    def tokens(self) -> tuple[str, ...]: ...

    @property
    def fitness(self) -> float: ...

    @property
    def valid(self) -> bool: ...

    @property
    def performance(self) -> Mapping[str, float]:
        """Chance-corrected performance per task."""

    @property
    def mean_performance(self) -> float: ...


@runtime_checkable
class BlueprintGenerator(Protocol):
    """What ``esper discover --generator NAME`` drives: proposals in, scores back."""

    def propose(self, n: int) -> Sequence[Sequence[str]]:
        """``n`` candidate token sequences."""

    def observe(self, candidates: Sequence[Sequence[str]],
                evaluations: Sequence[EvaluationView]) -> Mapping[str, float]:
        """Learn from the scores of the last proposals; returns metrics to report."""


class GeneratorFactory(Protocol):
    """``GeneratorSpec.factory``: ``options`` holds the command's settings (``budget``,
    ``batch_size``, ``tasks``, ``catalog_tokens``, ``generator_options`` …)."""

    def __call__(self, *, seed: int, options: Mapping[str, Any]) -> BlueprintGenerator: ...
