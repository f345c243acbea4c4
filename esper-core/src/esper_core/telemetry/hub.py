"""Fan telemetry out to several sinks, isolating each sink's failures from training.

Telemetry must never stop a run: a sink that raises (disk full, locked database, a bug in a
third-party plugin) is disabled after its first failure, with one structlog warning naming it,
and every other sink keeps receiving events. The hub depends only on the core contracts so that
the run engine can use it without this distribution's heavier parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from esper_core.contracts.events import TelemetryEvent
from esper_core.contracts.protocols import Sink
from esper_core.errors import EsperError
from esper_core.log_config import deferred_logger

logger = deferred_logger(__name__)


def sink_name(sink: Sink) -> str:
    """A readable name for log messages: the sink's ``name`` attribute or its class name."""
    name = getattr(sink, "name", None)
    return name if isinstance(name, str) and name else type(sink).__name__


class TelemetryHub:
    """A :class:`Sink` that forwards every call to many sinks, disabling any that raise."""

    name = "hub"

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self._sinks: list[Sink] = list(sinks)
        self._disabled: list[str] = []
        self._closed = False

    @property
    def disabled(self) -> list[str]:
        """Names of the sinks disabled after an error, in the order they failed."""
        return list(self._disabled)

    @property
    def active(self) -> list[Sink]:
        return list(self._sinks)

    def emit(self, event: TelemetryEvent) -> None:
        for sink in list(self._sinks):
            try:
                sink.emit(event)
            except Exception as exc:  # isolation is the point: any sink error is contained
                self._disable(sink, "emit", exc)

    def flush(self) -> None:
        for sink in list(self._sinks):
            try:
                sink.flush()
            except Exception as exc:
                self._disable(sink, "flush", exc)

    def positions(self) -> dict[str, Any]:
        """Where each sink that can rewind stands now (flush first), by sink name."""
        out: dict[str, Any] = {}
        for sink in list(self._sinks):
            position = getattr(sink, "position", None)
            if callable(position):
                try:
                    out[sink_name(sink)] = position()
                except Exception as exc:
                    self._disable(sink, "position", exc)
        return out

    def rewind(self, positions: Mapping[str, Any] | None) -> None:
        """Drop what each sink recorded after ``positions`` (from :meth:`positions`; None: from
        the start), so a resumed run appends without duplicating events. A sink that cannot
        rewind keeps its records, with one warning naming it."""
        for sink in list(self._sinks):
            name = sink_name(sink)
            rewind = getattr(sink, "rewind", None)
            if not callable(rewind):
                logger.warning("telemetry sink cannot rewind; it may repeat events after the resume point",
                               sink=name)
                continue
            try:
                rewind(None if positions is None else positions.get(name))
            except EsperError:  # a sink that finds its records damaged refuses the resume
                raise
            except Exception as exc:
                self._disable(sink, "rewind", exc)

    def close(self) -> None:
        """Close every sink once; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        sinks, self._sinks = self._sinks, []
        for sink in sinks:
            try:
                sink.close()
            except Exception as exc:
                self._record_failure(sink, "close", exc)

    def __enter__(self) -> TelemetryHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _disable(self, sink: Sink, operation: str, exc: BaseException) -> None:
        self._sinks.remove(sink)
        self._record_failure(sink, operation, exc)
        # Give the broken sink a chance to release its file or connection; a second failure
        # here is expected for a broken sink and is not worth another warning.
        try:
            sink.close()
        except Exception:
            logger.debug("disabled telemetry sink also failed to close", sink=sink_name(sink))

    def _record_failure(self, sink: Sink, operation: str, exc: BaseException) -> None:
        name = sink_name(sink)
        self._disabled.append(name)
        logger.warning(
            "telemetry sink failed and was disabled; training continues",
            sink=name,
            operation=operation,
            error=f"{type(exc).__name__}: {exc}",
        )
