from __future__ import annotations

import sys
import types
from typing import ClassVar

import pytest

from esper_core.contracts.events import EpochEnded, RewardComputed
from esper_core.errors import ConfigError, EsperError
from esper_telemetry.sinks import tensorboard as tb


class FakeWriter:
    instances: ClassVar[list[FakeWriter]] = []

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.scalars: list[tuple[str, float, int]] = []
        self.flushed = self.closed = 0
        FakeWriter.instances.append(self)

    def add_scalar(self, tag: str, value: float, global_step: int) -> None:
        self.scalars.append((tag, value, global_step))

    def flush(self) -> None:
        self.flushed += 1

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def fake_tensorboard(monkeypatch):
    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    FakeWriter.instances.clear()
    return FakeWriter


def test_missing_tensorboard_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(EsperError) as info:
        tb.TensorBoardSink.from_options(run_dir=tmp_path, options={})
    assert "pip install 'esper-telemetry[tensorboard]'" in str(info.value)


def test_round_trip_scalars(fake_tensorboard, tmp_path, recorded_events):
    sink = tb.TensorBoardSink.from_options(run_dir=tmp_path, options={})
    for event in recorded_events:
        sink.emit(event)
    sink.flush()
    sink.close()
    writer = fake_tensorboard.instances[0]
    assert writer.log_dir == str(tmp_path / "tensorboard")
    assert writer.flushed == 1 and writer.closed == 1
    series: dict[str, list[tuple[int, float]]] = {}
    for tag, value, step in writer.scalars:
        series.setdefault(tag, []).append((step, value))
    epochs = [e for e in recorded_events if isinstance(e, EpochEnded)]
    assert series["accuracy/val"] == [(i + 1, e.val_accuracy) for i, e in enumerate(epochs)]
    assert series["loss/train"] == [(i + 1, e.train_loss) for i, e in enumerate(epochs)]
    assert series["params/seed"][-1] == (10, epochs[-1].seed_params)
    assert series["alpha/r0"][5:] == [(6, 0.27), (7, 0.73), (8, 0.96), (9, 1.0), (10, 1.0)]
    assert series["contribution/r0"][0] == (6, 0.8)
    rewards = [e for e in recorded_events if isinstance(e, RewardComputed)]
    assert series["reward/total"] == [(e.epoch, e.total) for e in rewards]
    assert series["reward/rollback_penalty"] == [(6, -1.0)]
    assert series["ppo/losses/approx_kl"] == [(1, 0.01), (2, 0.02), (3, 0.03)]
    assert series["events/rollbacks"] == [(6, 1.0)]
    # Gradient health lands on its epoch's step (it is reported before the epoch's row).
    assert series["grad/score"] == [(i, 0.6 if i == 6 else 1.0) for i in range(1, 11)]
    assert series["grad/global_norm_mean"][1] == (2, 0.75)
    assert series["grad/nonfinite_steps"][5] == (6, 1.0)
    assert series["grad_layer/slots.r1.seed/score"][5] == (6, 0.2)
    assert series["grad_layer/host.segments.0/norm"][0] == (1, 1.2)


def test_point_cap(fake_tensorboard, tmp_path, recorded_events):
    sink = tb.TensorBoardSink.from_options(run_dir=None, options={
        "logdir": str(tmp_path / "tb"), "max_points": 25})
    for event in recorded_events:
        sink.emit(event)
    assert len(fake_tensorboard.instances[0].scalars) == 25


def test_options(fake_tensorboard):
    with pytest.raises(ConfigError, match="run directory"):
        tb.TensorBoardSink.from_options(run_dir=None, options={})
    with pytest.raises(ConfigError, match="'log_dir'.*logdir, max_points"):
        tb.TensorBoardSink.from_options(run_dir=None, options={"log_dir": "x"})
