"""The ``csv`` sink: one row of metrics per epoch in ``<run_dir>/metrics.csv``.

Columns are the epoch's scalar metrics (with ``grad_score`` and ``grad_norm``, the epoch's
gradient-health score and mean global gradient norm, empty when the ``gradient_health``
observer is off) followed by ``<slot>.stage``, ``<slot>.blueprint``,
``<slot>.alpha``, ``<slot>.contribution`` and ``<slot>.seed_params`` for every slot reported in
the first epoch (a run's slots are fixed when it starts). An existing file is appended to with
its own header's columns, so a resumed run keeps one consistent table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from attrs import field, frozen

from esper_core.contracts.events import EpochEnded, GradientHealth, TelemetryEvent
from esper_core.options import int_at_least, non_empty_text, parse_options
from esper_telemetry.limits import OutputCap
from esper_telemetry.sinks.run_path import sink_path

logger = structlog.get_logger(__name__)

METRIC_COLUMNS = (
    "run_id",
    "episode",
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "host_params",
    "seed_params",
    "seconds",
    "timestamp",
    "grad_score",
    "grad_norm",
)
#: Columns filled from the epoch's GradientHealth event (it arrives before the epoch's row).
GRADIENT_COLUMNS = {"grad_score": "score", "grad_norm": "global_norm_mean"}
SLOT_FIELDS = ("stage", "blueprint", "alpha", "contribution", "seed_params")


@frozen(kw_only=True)
class CsvOptions:
    #: File name (inside the run directory) or an absolute path.
    path: str = field(default="metrics.csv", validator=non_empty_text("a path"))
    #: Stop writing after this many data rows (None: unbounded).
    max_rows: int | None = field(default=1_000_000, validator=int_at_least(1, optional=True))
    #: Stop writing before the file would exceed this many bytes (None: unbounded).
    max_bytes: int | None = field(default=None, validator=int_at_least(1, optional=True))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else value


class CsvSink:
    """Appends per-epoch metric rows to a CSV file, flushed after every row."""

    name = "csv"

    def __init__(self, path: Path, *, max_rows: int | None = None,
                 max_bytes: int | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        existing = path.stat().st_size if path.exists() else 0
        self._columns: list[str] | None = self._read_header(path) if existing else None
        self._cap = OutputCap(sink=self.name, target=str(path), max_rows=max_rows,
                              max_bytes=max_bytes, bytes=existing)
        self._handle = path.open("a", encoding="utf-8", newline="")
        self._warned_slots: set[str] = set()
        self._gradients: GradientHealth | None = None  # the latest, until its epoch's row

    @classmethod
    def from_options(cls, *, run_dir: Path | None, options: Mapping[str, Any]) -> CsvSink:
        owner = "telemetry sink 'csv'"
        opts = parse_options(CsvOptions, options, owner=owner)
        return cls(sink_path(opts.path, run_dir, owner=owner, key="path"), max_rows=opts.max_rows,
                   max_bytes=opts.max_bytes)

    @staticmethod
    def _read_header(path: Path) -> list[str] | None:
        with path.open(encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle), None)

    def emit(self, event: TelemetryEvent) -> None:
        if isinstance(event, GradientHealth):
            self._gradients = event
            return
        if not isinstance(event, EpochEnded):
            return
        text = ""
        if self._columns is None:
            self._columns = [*METRIC_COLUMNS, *(
                f"{slot.get('slot')}.{name}" for slot in event.slots for name in SLOT_FIELDS
            )]
            text += self._format(self._columns)
        text += self._format([_cell(v) for v in self._row(event)])
        if self._cap.allow(nbytes=len(text.encode("utf-8"))):
            self._handle.write(text)
            # One row per epoch is cheap to flush, and makes metrics.csv readable live.
            self._handle.flush()

    def _row(self, event: EpochEnded) -> list[Any]:
        assert self._columns is not None
        values: dict[str, Any] = {name: getattr(event, name) for name in METRIC_COLUMNS
                                  if name not in GRADIENT_COLUMNS}
        gradients, self._gradients = self._gradients, None
        if gradients is not None and (gradients.run_id, gradients.episode, gradients.epoch) == (
                event.run_id, event.episode, event.epoch):
            for column, name in GRADIENT_COLUMNS.items():
                values[column] = getattr(gradients, name)
        for slot in event.slots:
            slot_name = str(slot.get("slot"))
            for name in SLOT_FIELDS:
                values[f"{slot_name}.{name}"] = slot.get(name)
            if f"{slot_name}.stage" not in self._columns and slot_name not in self._warned_slots:
                self._warned_slots.add(slot_name)
                logger.warning("slot not in metrics.csv header; its columns are not written",
                               slot=slot_name, path=str(self.path))
        return [values.get(column) for column in self._columns]

    @staticmethod
    def _format(cells: list[Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer).writerow(cells)
        return buffer.getvalue()

    def flush(self) -> None:
        if not self._handle.closed:
            self._handle.flush()

    def close(self) -> None:
        self._handle.close()
