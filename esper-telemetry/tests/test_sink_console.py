from __future__ import annotations

import pytest

from esper_core.contracts.events import (
    DecisionMade,
    EpochEnded,
    GateEvaluated,
    SeedLifecycle,
    TelemetryEvent,
)
from esper_core.errors import ConfigError
from esper_telemetry.sinks.console import ConsoleSink


def _emit_all(sink: ConsoleSink, events: list[TelemetryEvent]) -> None:
    for event in events:
        sink.emit(event)
    sink.flush()
    sink.close()


def test_one_line_per_epoch_and_lifecycle_event_on_stderr(capsys, recorded_events):
    _emit_all(ConsoleSink.from_options(run_dir=None, options={}), recorded_events)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    epochs = [e for e in recorded_events if isinstance(e, EpochEnded)]
    epoch_lines = [line for line in lines if " acc " in line]
    assert len(epoch_lines) == len(epochs)
    assert "acc 54.40%" in epoch_lines[-1]
    assert "r0:PROBATIONARY(cnn:conv_light α=1.00)" in epoch_lines[-1]
    for event in recorded_events:
        if isinstance(event, SeedLifecycle):
            assert sum(f"{event.from_stage} → {event.to_stage}" in line and event.slot in line
                       for line in lines) >= 1
    gates = [e for e in recorded_events if isinstance(e, GateEvaluated)]
    assert sum(" gate " in line for line in lines) == len(gates)
    actions = [e for e in recorded_events if isinstance(e, DecisionMade) and e.op != "WAIT"]
    assert sum(": WAIT" in line for line in lines) == 0
    assert sum("heuristic: " in line for line in lines) == len(actions)
    assert any("ROLLBACK r1" in line and "non-finite loss" in line for line in lines)
    assert any("anomaly nan_inf" in line for line in lines)
    assert sum(line.startswith("ppo update") for line in lines) == 3
    assert lines[0].startswith("run run-a") and "done: final 54.40%" in lines[-1]
    assert all(len(line) < 160 for line in lines)


def test_filters_and_stdout(capsys, recorded_events):
    sink = ConsoleSink.from_options(run_dir=None, options={
        "stream": "stdout", "decisions": "all", "gates": "failed", "rewards": True})
    _emit_all(sink, recorded_events)
    out = capsys.readouterr().out.splitlines()
    assert sum(": WAIT" in line for line in out) == 3
    assert [line for line in out if " gate " in line] == [
        next(line for line in out if "fail (ratio 0.01 < 0.05)" in line)]
    assert sum(" reward " in line for line in out) == 10
    quiet = ConsoleSink.from_options(run_dir=None, options={"decisions": "none", "gates": "passed"})
    gate = next(e for e in recorded_events if isinstance(e, GateEvaluated) and not e.passed)
    decision = next(e for e in recorded_events if isinstance(e, DecisionMade))
    assert quiet.format(gate) is None and quiet.format(decision) is None
    assert quiet.format(TelemetryEvent()) is None


def test_bad_options():
    with pytest.raises(ConfigError, match="'colour'"):
        ConsoleSink.from_options(run_dir=None, options={"colour": True})
    with pytest.raises(ConfigError, match="stream"):
        ConsoleSink.from_options(run_dir=None, options={"stream": "file"})
