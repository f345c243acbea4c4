"""The ``tensorboard`` sink: scalars for TensorBoard.

Tags: ``loss/train``, ``loss/val``, ``accuracy/val``, ``params/host``, ``params/seed``,
``alpha/<slot>``, ``contribution/<slot>``, ``reward/total``, ``reward/<term>``, ``ppo/<metric>``,
``events/rollbacks`` and, from the ``gradient_health`` observer, ``grad/score``,
``grad/global_norm_mean``, ``grad/global_norm_max``, ``grad/vanishing_fraction``,
``grad/exploding_fraction``, ``grad/nonfinite_steps`` and ``grad_layer/<layer>/norm`` and
``.../score`` (richer profiles; the event's layers only). The x axis is the number of epochs
this sink has seen (so episodes follow each other instead of overwriting epoch 1..E); PPO
metrics use the update number.
Needs the optional ``tensorboard`` package (``pip install 'esper-telemetry[tensorboard]'``);
torch's writer is imported only when the sink is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import field, frozen

from esper_core.contracts.events import (
    EpochEnded,
    GovernorRollback,
    GradientHealth,
    PPOUpdate,
    RewardComputed,
    TelemetryEvent,
)
from esper_core.errors import EsperError
from esper_core.options import int_at_least, non_empty_text, parse_options
from esper_telemetry.limits import OutputCap
from esper_telemetry.sinks.run_path import sink_path

INSTALL_HINT = (
    "the 'tensorboard' telemetry sink needs the tensorboard package, which is not installed; "
    "install it with: pip install 'esper-telemetry[tensorboard]'"
)


@frozen(kw_only=True)
class TensorBoardOptions:
    #: Log directory; relative paths are inside the run directory. Default ``tensorboard``.
    logdir: str = field(default="tensorboard", validator=non_empty_text("a path"))
    #: Stop writing after this many scalar points (None: unbounded).
    max_points: int | None = field(default=1_000_000, validator=int_at_least(1, optional=True))


def _summary_writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise EsperError(INSTALL_HINT) from exc
    return SummaryWriter


class TensorBoardSink:
    """Writes scalar summaries with :class:`torch.utils.tensorboard.SummaryWriter`."""

    name = "tensorboard"

    def __init__(self, logdir: Path, *, max_points: int | None = None) -> None:
        writer_class = _summary_writer_class()
        self.logdir = logdir
        self._writer = writer_class(log_dir=str(logdir))
        self._cap = OutputCap(sink=self.name, target=str(logdir), max_rows=max_points)
        self._step = 0
        self._rollbacks = 0

    @classmethod
    def from_options(cls, *, run_dir: Path | None, options: Mapping[str, Any]) -> TensorBoardSink:
        owner = "telemetry sink 'tensorboard'"
        opts = parse_options(TensorBoardOptions, options, owner=owner)
        # an existing log directory is fine: every run adds its own event files to it
        return cls(sink_path(opts.logdir, run_dir, owner=owner, key="logdir", shared=True),
                   max_points=opts.max_points)

    def _scalar(self, tag: str, value: Any, step: int) -> None:
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            return
        if self._cap.allow():
            self._writer.add_scalar(tag, float(value), global_step=step)

    def emit(self, event: TelemetryEvent) -> None:
        if isinstance(event, EpochEnded):
            self._step += 1
            step = self._step
            self._scalar("loss/train", event.train_loss, step)
            self._scalar("loss/val", event.val_loss, step)
            self._scalar("accuracy/val", event.val_accuracy, step)
            self._scalar("params/host", event.host_params, step)
            self._scalar("params/seed", event.seed_params, step)
            self._scalar("time/epoch_seconds", event.seconds, step)
            for slot in event.slots:
                name = slot.get("slot")
                self._scalar(f"alpha/{name}", slot.get("alpha"), step)
                self._scalar(f"contribution/{name}", slot.get("contribution"), step)
        elif isinstance(event, RewardComputed):
            self._scalar("reward/total", event.total, self._step)
            for term, value in event.terms.items():
                self._scalar(f"reward/{term}", value, self._step)
        elif isinstance(event, PPOUpdate):
            for metric, value in event.metrics.items():
                self._scalar(f"ppo/{metric}", value, event.update)
        elif isinstance(event, GradientHealth):
            # Observers report before the epoch's EpochEnded: plot on that epoch's step.
            step = self._step + 1
            for name in ("score", "global_norm_mean", "global_norm_max", "vanishing_fraction",
                         "exploding_fraction", "nonfinite_steps"):
                self._scalar(f"grad/{name}", getattr(event, name), step)
            for layer in event.layers:
                self._scalar(f"grad_layer/{layer.get('name')}/norm", layer.get("norm_mean"), step)
                self._scalar(f"grad_layer/{layer.get('name')}/score", layer.get("score"), step)
        elif isinstance(event, GovernorRollback):
            self._rollbacks += 1
            self._scalar("events/rollbacks", self._rollbacks, self._step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
