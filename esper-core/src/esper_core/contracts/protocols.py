"""Structural interfaces that plugins implement: tasks, hosts, policies, sinks, schedules.

These are :class:`typing.Protocol` classes so that a plugin never has to inherit from Esper;
torch types appear only for type checkers, keeping this module torch-free at import time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from attrs import field, frozen

from esper_core.contracts.decisions import ActionMask, Decision
from esper_core.contracts.events import TelemetryEvent
from esper_core.contracts.reports import EpochReport

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from esper_core.contracts.training import ResolvedRunView, TrainingSessionProtocol


@frozen
class InjectionPoint:
    """A named place in a host where a seed slot sits; ``width`` is its channel/feature size."""

    name: str
    width: int


@runtime_checkable
class SegmentedHost(Protocol):
    """A host network cut at its injection points.

    ``segments`` has ``len(injection_points) + 1`` modules: the host's forward is
    ``segments[0] → point 0 → segments[1] → … → point n-1 → segments[n]``. Kasmina inserts a
    seed slot at each chosen point and shares the prefix when measuring counterfactuals.
    """

    injection_points: tuple[InjectionPoint, ...]
    segments: nn.ModuleList


@runtime_checkable
class Task(Protocol):
    """Data, host and metric of one episode, built by a :class:`TaskSpec` factory.

    Further methods and attributes are optional (every built-in task has the methods):

    * ``test_batches()``: the held-out test split, never shown to a controller or a gate;
      the engine measures it once per episode and reports it as ``test_accuracy``. Without
      it a run reports ``test_accuracy`` as null.
    * ``correct_per_example(output, target) -> Tensor``: one float per example (1/0, or the
      fraction of an example's positions that are right), for the gates' paired per-example
      statistics; without it each validation batch is one paired unit.
    * ``input_contract() -> dict``: how to feed the host, for ``esper export``'s sidecar
      ``<file>.json``: a plain JSON-able dict with ``input`` (``shape`` without the batch
      dimension, ``dtype``), ``normalisation`` (how raw data becomes that input, e.g.
      per-channel ``mean``/``std``), ``output`` and ``class_names`` (``None`` when unknown).
      Without it the sidecar gives the shape and dtype of a validation batch only, and says so.
    * ``class_names``: the class names in label order, when the dataset has them.
    * ``loss_metrics(loss: float) -> Mapping[str, float]``: named metrics derived from a mean
      loss (a language model's ``perplexity`` and ``bits_per_byte``); the engine records them
      as given, for the validation loss of every epoch (``EpochEnded.val_metrics``) and for the
      test loss (``test_metrics`` in the summary, beside ``test_loss``).
    """

    name: str
    topology: str

    def build_host(self) -> nn.Module:
        """A fresh :class:`SegmentedHost` module (on the task's device)."""

    def train_batches(self, *, epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """Training batches of ``epoch``, on the task's device; order fixed by the task seed."""

    def val_batches(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """Validation batches, always the same."""

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean training loss of a batch."""

    def correct(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Number of correct predictions (a tensor, so no device sync) and the count judged."""


@frozen(kw_only=True)
class PolicyContext:
    """What a policy factory knows about the episodes it will control."""

    slot_names: tuple[str, ...] = field(converter=tuple[str, ...])
    blueprint_keys: tuple[str, ...] = field(converter=tuple[str, ...])
    topology: str
    max_epochs: int
    seed: int
    options: Mapping[str, Any] = field(factory=dict)

    @property
    def n_slots(self) -> int:
        return len(self.slot_names)


@runtime_checkable
class Policy(Protocol):
    """A Tamiyo controller."""

    name: str

    def reset(self, *, episode: int) -> None:
        """Called before each episode starts; clears per-episode state."""

    def decide(self, *, report: EpochReport, mask: ActionMask) -> Decision:
        """Called after each epoch; returns one decision that ``mask`` allows."""


@runtime_checkable
class Stateful(Protocol):
    """Optional for a :class:`Policy` or an :class:`Observer` whose state outlives an epoch.

    Run checkpoints call :meth:`state_dict` between epochs and store the result; a resumed run
    builds the component afresh and calls :meth:`load_state_dict` with it, after which the
    component must behave exactly as the original would have. A policy without these methods
    cannot be resumed (observers without them are assumed to keep no cross-epoch state).
    """

    def state_dict(self) -> dict[str, Any]:
        """Plain data (numbers, strings, lists, dicts, tensors): run checkpoints load it through
        an allow-list and refuse anything else (docs/security.md); must not alias live objects
        the component keeps mutating."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


@frozen(kw_only=True)
class PolicyTrainingContext:
    """What a learned policy's trainer factory knows before anything runs.

    ``policy.options`` holds the ``[policy]`` table (``--rounds``, ``--envs``, … land there);
    ``resolved`` is the fully resolved run (an ``esper_core.setup.resolve.ResolvedRun``; read it
    through :class:`~esper_core.contracts.training.ResolvedRunView`).
    """

    policy: PolicyContext
    device: str
    resolved: ResolvedRunView
    #: ``esper run --resume``: a trainer that cannot continue a run refuses here, before the
    #: run directory is touched
    resume: bool = False


@runtime_checkable
class PolicyTrainer(Protocol):
    """Trains a learned controller inside ``esper run``; built by ``PolicySpec.trainer``."""

    def train(self, *, session: TrainingSessionProtocol) -> Mapping[str, Any]:
        """Called once, after the run directory and telemetry are open. ``session`` (see
        :class:`~esper_core.contracts.training.TrainingSessionProtocol`) gives the run directory,
        ``emit``, environments and whether to resume. Saves checkpoints under the run directory — calling
        ``session.checkpointed(...)`` after each, which stops the run there on SIGINT/SIGTERM —
        and returns the run summary (JSON-able)."""


@runtime_checkable
class Sink(Protocol):
    """A telemetry sink (the OpenTelemetry exporter contract, simplified)."""

    def emit(self, event: TelemetryEvent) -> None:
        """Record one event. May buffer."""

    def flush(self) -> None:
        """Make everything emitted so far durable."""

    def close(self) -> None:
        """Flush and release resources; no emit follows."""


@runtime_checkable
class RewindableSink(Sink, Protocol):
    """A sink a resumed run can rewind, so it appends without repeating events (optional: a sink
    without these methods keeps its records, with a warning, on ``esper run --resume``)."""

    def position(self) -> Any:
        """Where the sink stands now (flush first): plain data, stored in run checkpoints."""

    def rewind(self, position: Any | None) -> None:
        """Drop what was recorded after ``position`` (None: everything). Raise an
        ``esper_core.errors.EsperError`` when the records are damaged, to refuse the resume."""


@runtime_checkable
class Observer(Protocol):
    """Watches one episode's model; built per episode by an :class:`ObserverSpec` factory."""

    def after_epoch(self, *, report: EpochReport) -> Sequence[TelemetryEvent]:
        """Called after validation each epoch; returns events to emit. :class:`Anomaly` events
        also reach the reward terms (``RewardContext.anomalies``)."""

    def close(self) -> None:
        """Called when the episode ends, normally or not; release hooks and buffers."""


@runtime_checkable
class AlphaSchedule(Protocol):
    """Blending weight as a function of epochs spent blending."""

    def __call__(self, k: float) -> float:
        """α after ``k`` blending epochs: 0 at ``k ≤ 0``, 1 at ``k ≥ T``, monotone between."""


@frozen(kw_only=True)
class RewardContext:
    """Everything a reward term may look at for one controller step."""

    report: EpochReport
    previous: EpochReport | None
    decision: Decision
    decision_applied: bool
    #: (slot name, from stage name, to stage name) of every transition during this step.
    transitions: tuple[tuple[str, str, str], ...] = field(converter=tuple[tuple[str, str, str], ...], factory=tuple)
    rollbacks: int = 0
    #: (slot name or None, signature) of every anomaly detected during this step.
    anomalies: tuple[tuple[str | None, str], ...] = field(converter=tuple[tuple[str | None, str], ...],
                                                         factory=tuple)
    terminal: bool = False
    #: accuracy at the start of the episode (after epoch 1), for "total improvement" guards.
    start_accuracy: float = 0.0

