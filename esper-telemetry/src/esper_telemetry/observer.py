"""The ``gradient_health`` training observer: a :class:`GradientHealthTracker` on every run.

The run engine builds one observer per episode with the episode's model and calls
:meth:`GradientHealthObserver.after_epoch` after each validation, emitting the
:class:`~esper_core.contracts.events.GradientHealth` event it returns, and
:meth:`GradientHealthObserver.close` when the episode ends, normally or not.

How gradients are seen: the observer gets the model, not the optimizers or the training loop,
so the tracker hooks the model itself (``hook_backward=True``): a forward hook marks each
grad-enabled forward's output, and when backward reaches it one end-of-backward callback is
queued that measures the gradients the parameters then hold. The hooks never change a
gradient, take no random numbers and run no kernel on the parameters, so a run's results are
identical with and without the observer.

Which parameters: every trainable parameter of the model — the host, fossilized seeds and
every seed in a slot. Seeds appear and disappear between epochs (germinate, cull), so after
each epoch's report the observer registers a forward pre-hook that, at the next training
forward (train mode, grad enabled), removes itself and refreshes the parameter list: a changed
parameter set gets a fresh tracker, watching the new parameters, and the old one's hook is
removed.

Options (``[observers.gradient_health]`` in a run config): ``profile`` (``minimal`` — the
default —, ``standard`` or ``diagnostic``), ``every_n_steps``, ``vanishing_threshold``,
``exploding_threshold`` (see :class:`GradientHealthConfig`) and ``max_layers`` (most per-layer
entries one event carries, default 32; the lowest-scoring layers are kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from attrs import field, frozen

from esper_core.contracts.events import GradientHealth, TelemetryEvent
from esper_core.contracts.reports import EpochReport
from esper_core.options import int_at_least, one_of, parse_options
from esper_telemetry.gradient_health import (
    PROFILES,
    GradientHealthConfig,
    GradientHealthReport,
    GradientHealthTracker,
    LayerHealth,
)

NAME = "gradient_health"
OWNER = f"observer {NAME!r}"
DEFAULT_PROFILE = "minimal"
DEFAULT_MAX_LAYERS = 32
#: Significant digits kept for the floats of an event (keeps records short and readable).
_DIGITS = 6


def _short(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.{_DIGITS}g}")


@frozen(kw_only=True)
class ObserverOptions(GradientHealthConfig):
    """``[observers.gradient_health]``: the tracker's settings and how many layers an event carries.
    The observer's default profile is ``minimal`` (the tracker's own is ``standard``): every run
    that lists the observer pays for it, so by default it pays only for the global norm."""

    profile: str = field(default=DEFAULT_PROFILE, validator=one_of(*PROFILES))
    max_layers: int = field(default=DEFAULT_MAX_LAYERS, validator=int_at_least(0))


def parse_observer_options(options: Mapping[str, Any]) -> tuple[GradientHealthConfig, int]:
    """The tracker config and ``max_layers`` from ``[observers.gradient_health]``.

    Unknown keys and bad values raise :class:`~esper_core.errors.ConfigError` naming the
    observer, the key and what is allowed.
    """
    parsed = parse_options(ObserverOptions, options, owner=OWNER)
    tracker = {a.name: getattr(parsed, a.name) for a in attrs.fields(GradientHealthConfig)}
    return GradientHealthConfig(**tracker), parsed.max_layers


class GradientHealthObserver:
    """Observer protocol implementation: one hooked tracker over the episode's model."""

    name = NAME

    def __init__(self, model: Any, config: GradientHealthConfig | None = None, *,
                 max_layers: int = DEFAULT_MAX_LAYERS) -> None:
        self.model = model
        self.config = config or GradientHealthConfig(profile=DEFAULT_PROFILE)
        self.max_layers = max_layers
        self._tracker: GradientHealthTracker | None = None
        self._pre_hook: Any = None
        self._closed = False
        self._sync()

    @classmethod
    def from_options(cls, *, model: Any, options: Mapping[str, Any]) -> GradientHealthObserver:
        config, max_layers = parse_observer_options(options)
        return cls(model, config, max_layers=max_layers)

    @property
    def tracker(self) -> GradientHealthTracker | None:
        return self._tracker

    @property
    def hook_count(self) -> int:
        """Hooks this observer holds: the tracker's, plus the forward pre-hook while the
        parameter list is stale (0 after close)."""
        tracker = self._tracker.hook_count if self._tracker is not None else 0
        return tracker + (self._pre_hook is not None)

    def _before_forward(self, module: Any, args: Any) -> None:
        # Registered only from an epoch's report to the next training forward, so that
        # validation and the training steps run without a module hook.
        if module.training:
            import torch

            if torch.is_grad_enabled():
                self._remove_pre_hook()
                self._sync()

    def _remove_pre_hook(self) -> None:
        handle, self._pre_hook = self._pre_hook, None
        if handle is not None:
            handle.remove()

    def _sync(self) -> None:
        """Track the model's current trainable parameters (a new tracker if they changed)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        old = self._tracker
        if old is not None and len(params) == len(old.parameters) and all(
                a is b for a, b in zip(params, old.parameters, strict=True)):
            return
        self._tracker = None
        if old is not None:
            old.close()
        self._tracker = GradientHealthTracker(self.model, self.config, hook_backward=True)

    def after_epoch(self, *, report: EpochReport) -> Sequence[TelemetryEvent]:
        if self._closed or self._tracker is None:
            return []
        summary = self._tracker.epoch_summary()
        # The controller may now grow or prune the model: re-read the parameters before the
        # next epoch's first training step.
        if self._pre_hook is None:
            self._pre_hook = self.model.register_forward_pre_hook(self._before_forward)
        return [self.event(summary, episode=report.episode, epoch=report.epoch)]

    def event(self, summary: GradientHealthReport, *, episode: int = 0,
              epoch: int = 0) -> GradientHealth:
        """The telemetry event of one epoch's summary (at most ``max_layers`` layers)."""
        layers = list(summary.layers)
        omitted = max(0, len(layers) - self.max_layers)
        if omitted:
            order = {layer.name: i for i, layer in enumerate(layers)}
            worst = sorted(layers, key=lambda layer: (layer.score, order[layer.name]))
            layers = sorted(worst[:self.max_layers], key=lambda layer: order[layer.name])
        return GradientHealth(
            episode=episode,
            epoch=epoch,
            profile=summary.profile,
            steps=summary.steps,
            score=_short(summary.score),
            global_norm_mean=_short(summary.global_norm_mean),
            global_norm_max=_short(summary.global_norm_max),
            vanishing_fraction=_short(summary.vanishing_fraction),
            exploding_fraction=_short(summary.exploding_fraction),
            nonfinite_steps=summary.nonfinite_steps,
            layers=[_layer_record(layer) for layer in layers],
            layers_omitted=omitted,
        )

    def close(self) -> None:
        """Remove every hook (idempotent); called by the engine on success and on error."""
        if self._closed:
            return
        self._closed = True
        self._remove_pre_hook()
        if self._tracker is not None:
            self._tracker.close()


def _layer_record(layer: LayerHealth) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": layer.name,
        "score": _short(layer.score),
        "norm_mean": _short(layer.norm_mean),
        "norm_max": _short(layer.norm_max),
        "vanishing_fraction": _short(layer.vanishing_fraction),
        "exploding_fraction": _short(layer.exploding_fraction),
        "nonfinite_steps": layer.nonfinite_steps,
    }
    if layer.std is not None:
        record["std"] = _short(layer.std)
    return record
