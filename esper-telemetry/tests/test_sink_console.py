from __future__ import annotations

import pytest

from esper_core.contracts.events import (
    DecisionMade,
    EpochEnded,
    GateEvaluated,
    GradientHealth,
    RunEnded,
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
    assert lines[0].startswith("run run-a")
    assert "done: test 52.10% (baseline 49.30%, +2.80)  val final 54.40%  best 54.40%" in lines[-1]
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


def test_gradient_health_lines_only_when_unhealthy_by_default(recorded_events):
    reports = [e for e in recorded_events if isinstance(e, GradientHealth)]
    default = ConsoleSink.from_options(run_dir=None, options={})
    lines = [line for line in map(default.format, reports) if line is not None]
    assert len(lines) == 1  # epoch 6: a non-finite step and a vanishing seed
    (line,) = lines
    assert "e  6  gradients UNHEALTHY: score 0.60" in line
    assert "vanishing 40%" in line and "1 non-finite step(s)" in line
    assert "worst: slots.r1.seed 0.20, host.segments.0 1.00" in line
    every = ConsoleSink.from_options(run_dir=None, options={"gradients": "all"})
    assert sum(every.format(e) is not None for e in reports) == len(reports)
    assert "gradients: score 1.00  norm 1.5 (max 3)" in every.format(reports[0])
    silent = ConsoleSink.from_options(run_dir=None, options={"gradients": "none"})
    assert all(silent.format(e) is None for e in reports)
    exploding = GradientHealth(epoch=2, profile="minimal", steps=10, score=0.5,
                               global_norm_mean=5e4, global_norm_max=None,
                               vanishing_fraction=0.0, exploding_fraction=0.5)
    assert "exploding 50%" in default.format(exploding) and "(max -)" in default.format(exploding)


def test_run_end_line_leads_with_test_accuracy_only_when_recorded(recorded_events):
    summary = dict(next(e for e in recorded_events if isinstance(e, RunEnded)).summary)
    sink = ConsoleSink()
    assert "test 52.10% (baseline 49.30%, +2.80)" in sink.format(RunEnded(run_id="r", summary=summary))
    no_baseline = {k: v for k, v in summary.items() if k != "baseline"}
    line = sink.format(RunEnded(run_id="r", summary=no_baseline))
    assert "done: test 52.10%  val final 54.40%" in line and "baseline" not in line
    # A task without a test split (or a damaged figure): no test figure, val still labelled.
    for value in (None, "high"):
        line = sink.format(RunEnded(run_id="r", summary={**summary, "test_accuracy": value}))
        assert "test" not in line and "done: val final 54.40%  best 54.40%" in line
