"""Typed telemetry events (DESIGN §3) with a schema version.

Every event serialises to a flat JSON-able record via :meth:`TelemetryEvent.to_record` and
back with :func:`event_from_record`, so sinks and readers agree on one format.
"""

from __future__ import annotations

import functools
import time
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
from attrs import field, frozen

TELEMETRY_SCHEMA_VERSION = 1

_EVENT_TYPES: dict[str, type[TelemetryEvent]] = {}


@frozen(kw_only=True)
class TelemetryEvent:
    """Base of every event. ``kind`` names the record type in serialised form."""

    kind: ClassVar[str] = "event"
    run_id: str = ""
    episode: int = 0
    epoch: int = 0
    timestamp: float = field(factory=time.time)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str):
            _EVENT_TYPES[kind] = cls

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"kind": self.kind, "schema_version": TELEMETRY_SCHEMA_VERSION}
        record.update(attrs.asdict(self, recurse=True))
        return record


def event_from_record(record: Mapping[str, Any]) -> TelemetryEvent:
    """Rebuild a typed event from :meth:`TelemetryEvent.to_record` output."""
    data = dict(record)
    kind = data.pop("kind", None)
    version = data.pop("schema_version", None)
    if version != TELEMETRY_SCHEMA_VERSION:
        raise ValueError(f"telemetry schema version {version!r} is not {TELEMETRY_SCHEMA_VERSION}")
    if kind not in _EVENT_TYPES:
        raise ValueError(f"unknown telemetry event kind {kind!r}")
    cls = _EVENT_TYPES[kind]
    hints = _field_types(kind)
    values = {k: v for k, v in data.items() if k in hints}
    for name, value in values.items():
        if not _accepts(hints[name], value):
            # A record from a damaged or hand-edited file: readers skip it rather than let a
            # string where a number belongs fail later, far from the file.
            raise TypeError(f"{kind} field {name!r} holds {type(value).__name__}, not {hints[name]}")
    return cls(**values)


@functools.cache
def _field_types(kind: str) -> dict[str, Any]:
    cls = _EVENT_TYPES[kind]
    hints = typing.get_type_hints(cls)
    return {a.name: hints.get(a.name, Any) for a in attrs.fields(cls)}


def _accepts(kind: Any, value: Any) -> bool:
    """Whether a JSON value fits a field annotation (containers checked one level deep)."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(k, value) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    args = typing.get_args(kind)
    if (origin or kind) in (list, tuple):
        return isinstance(value, list | tuple) and (not args or all(_accepts(args[0], v) for v in value))
    if (origin or kind) in (dict, Mapping):
        return isinstance(value, Mapping) and (len(args) != 2 or all(
            isinstance(k, str) and _accepts(args[1], v) for k, v in value.items()))
    return True


@frozen(kw_only=True)
class RunStarted(TelemetryEvent):
    kind: ClassVar[str] = "run_started"
    task: str
    policy: str
    seed: int
    config: Mapping[str, Any] = field(factory=dict)


@frozen(kw_only=True)
class EpochEnded(TelemetryEvent):
    kind: ClassVar[str] = "epoch"
    train_loss: float
    val_loss: float
    val_accuracy: float
    host_params: int
    seed_params: int
    seconds: float
    slots: list[dict[str, Any]] = field(factory=list)
    #: The task's metrics of ``val_loss`` (its optional ``loss_metrics``, e.g. a text task's
    #: ``perplexity`` and ``bits_per_byte``); empty for tasks without them.
    val_metrics: Mapping[str, float] = field(factory=dict)


@frozen(kw_only=True)
class SeedLifecycle(TelemetryEvent):
    kind: ClassVar[str] = "seed_lifecycle"
    slot: str
    blueprint: str | None
    from_stage: str
    to_stage: str
    reason: str = ""


@frozen(kw_only=True)
class GateEvaluated(TelemetryEvent):
    kind: ClassVar[str] = "gate"
    slot: str
    gate: str
    target: str
    passed: bool
    reason: str
    measurements: Mapping[str, float] = field(factory=dict)


@frozen(kw_only=True)
class DecisionMade(TelemetryEvent):
    kind: ClassVar[str] = "decision"
    policy: str
    op: str
    slot: str | None
    blueprint: str | None
    reason: str
    confidence: float
    applied: bool = True
    outcome: str = ""


@frozen(kw_only=True)
class RewardComputed(TelemetryEvent):
    kind: ClassVar[str] = "reward"
    total: float
    terms: Mapping[str, float] = field(factory=dict)


@frozen(kw_only=True)
class GovernorRollback(TelemetryEvent):
    kind: ClassVar[str] = "governor_rollback"
    slot: str | None
    cause: str
    step: int = 0


@frozen(kw_only=True)
class PPOUpdate(TelemetryEvent):
    kind: ClassVar[str] = "ppo_update"
    update: int
    metrics: Mapping[str, float] = field(factory=dict)


@frozen(kw_only=True)
class Anomaly(TelemetryEvent):
    kind: ClassVar[str] = "anomaly"
    slot: str | None
    signature: str
    detail: str = ""
    value: float | None = None
    #: For a seed whose blueprint names the signature it should show (an anti-pattern's
    #: catalogued one): that signature, and whether this anomaly is it. None otherwise.
    expected: str | None = None
    matches: bool | None = None


@frozen(kw_only=True)
class RunEnded(TelemetryEvent):
    kind: ClassVar[str] = "run_ended"
    summary: Mapping[str, Any] = field(factory=dict)


@frozen(kw_only=True)
class GradientHealth(TelemetryEvent):
    """One epoch's gradient health (the ``gradient_health`` observer of esper-telemetry).

    ``score`` is in [0, 1] (1 healthy; None when no gradient was measured). The fractions are
    of measured steps whose global RMS gradient vanished/exploded (profile ``minimal``) or the
    mean over layers of the layers' fractions (richer profiles). ``layers`` (richer profiles
    only) holds at most the observer's ``max_layers`` entries — name, norm_mean, norm_max,
    score, vanishing_fraction, exploding_fraction, nonfinite_steps and, in ``diagnostic``, std —
    the lowest-scoring ones, in model order; ``layers_omitted`` counts the rest.
    """

    kind: ClassVar[str] = "gradient_health"
    profile: str
    steps: int
    score: float | None
    global_norm_mean: float | None = None
    global_norm_max: float | None = None
    vanishing_fraction: float | None = None
    exploding_fraction: float | None = None
    nonfinite_steps: int = 0
    layers: list[dict[str, Any]] = field(factory=list)
    layers_omitted: int = 0
