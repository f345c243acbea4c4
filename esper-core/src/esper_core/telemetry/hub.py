"""Fan-out of events to several sinks, each isolated from the others' failures."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from esper_core.contracts.events import TelemetryEvent
from esper_core.contracts.protocols import Sink

logger = structlog.get_logger(__name__)


class TelemetryHub:
    """Send every event to every sink; a sink that raises is disabled with one warning.

    Telemetry must never stop training: a failing sink loses its own output only.
    """

    def __init__(self, sinks: Sequence[tuple[str, Sink]]) -> None:
        self._sinks = list(sinks)
        self.disabled: list[str] = []

    def _call(self, method: str, *args: object) -> None:
        for name, sink in list(self._sinks):
            try:
                getattr(sink, method)(*args)
            except Exception as exc:
                self._sinks = [(n, s) for n, s in self._sinks if s is not sink]
                self.disabled.append(name)
                logger.warning("telemetry_sink_disabled", sink=name, method=method,
                               error=f"{type(exc).__name__}: {exc}")

    def emit(self, event: TelemetryEvent) -> None:
        self._call("emit", event)

    def flush(self) -> None:
        self._call("flush")

    def close(self) -> None:
        self._call("close")
        self._sinks = []
