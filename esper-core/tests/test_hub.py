from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from esper_core.contracts.events import TelemetryEvent
from esper_core.telemetry.hub import TelemetryHub


class Recorder:
    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.events: list[TelemetryEvent] = []
        self.flushes = 0
        self.closes = 0

    def emit(self, event: TelemetryEvent) -> None:
        self.events.append(event)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closes += 1


class Exploding(Recorder):
    def __init__(self, fail_on: str, after: int = 0) -> None:
        super().__init__("exploding")
        self.fail_on = fail_on
        self.after = after

    def emit(self, event: TelemetryEvent) -> None:
        if self.fail_on == "emit" and len(self.events) >= self.after:
            raise OSError("disk full")
        super().emit(event)

    def flush(self) -> None:
        if self.fail_on == "flush":
            raise OSError("flush failed")

    def close(self) -> None:
        super().close()
        if self.fail_on in ("close", "emit"):
            raise RuntimeError("close failed")


def test_raising_sink_is_disabled_once_and_others_keep_receiving(recorded_events):
    good, bad = Recorder(), Exploding("emit", after=2)
    hub = TelemetryHub([bad, good])
    with capture_logs() as logs:
        for event in recorded_events:
            hub.emit(event)
    assert good.events == recorded_events
    assert len(bad.events) == 2
    assert hub.disabled == ["exploding"]
    warnings = [log for log in logs if log["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["sink"] == "exploding"
    assert "OSError: disk full" in warnings[0]["error"]
    assert bad.closes == 1  # the hub tried to release the broken sink's resources
    hub.close()
    assert good.closes == 1 and bad.closes == 1


def test_flush_failure_disables_only_that_sink(recorded_events):
    good, bad = Recorder(), Exploding("flush")
    hub = TelemetryHub([good, bad])
    hub.emit(recorded_events[0])
    with capture_logs() as logs:
        hub.flush()
        hub.flush()
    assert hub.disabled == ["exploding"]
    assert good.flushes == 2
    assert [log["operation"] for log in logs if log["log_level"] == "warning"] == ["flush"]
    hub.emit(recorded_events[1])
    assert len(good.events) == 2 and len(bad.events) == 1


def test_close_failure_is_logged_and_other_sinks_still_close():
    first, bad, last = Recorder("first"), Exploding("close"), Recorder("last")
    with capture_logs() as logs, TelemetryHub([first, bad, last]) as hub:
        pass
    assert first.closes == last.closes == 1
    assert hub.disabled == ["exploding"]
    assert logs[0]["operation"] == "close"
    hub.close()  # idempotent
    assert first.closes == 1


def test_unnamed_sink_is_reported_by_class_name(recorded_events):
    class Broken:
        def emit(self, event: TelemetryEvent) -> None:
            raise ValueError("bug")

        def flush(self) -> None: ...

        def close(self) -> None: ...

    hub = TelemetryHub([Broken()])
    hub.emit(recorded_events[0])
    assert hub.disabled == ["Broken"]
    assert hub.active == []


def test_keyboard_interrupt_is_not_swallowed(recorded_events):
    class Interrupting(Recorder):
        def emit(self, event: TelemetryEvent) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        TelemetryHub([Interrupting()]).emit(recorded_events[0])


def test_deferred_logger_logs_through_structlog_and_copies_safely():
    import copy

    from esper_core.log_config import deferred_logger

    logger = deferred_logger("esper.test")
    with capture_logs() as logs:
        logger.warning("deferred", detail=1)
    assert logs == [{"event": "deferred", "detail": 1, "log_level": "warning"}]
    clone = copy.copy(logger)
    with capture_logs() as logs:
        clone.info("copied")
    assert [log["event"] for log in logs] == ["copied"]
