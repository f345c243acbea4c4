"""Console vs JSON rendering of the per-epoch and seed-transition log records."""

from __future__ import annotations

import json

import pytest
import structlog
from engine_helpers import Scripted, _policies_plugin

from esper_core.config import RunConfig
from esper_core.log_config import configure_logging
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.setup.tasks import build_task
from esper_core.testing import toy
from esper_core.tolaria.episode import run_episode

EPOCH_KEYS = {"event", "level", "timestamp", "episode", "epoch", "policy", "val_accuracy", "train_loss",
              "decision", "applied", "slots"}


class _Context:
    blueprint_keys = ("toy:residual_linear", "toy:identity")


@pytest.fixture(autouse=True)
def _restore_structlog():
    yield
    structlog.reset_defaults()


def _run_short_episode():
    catalog = build_catalog(load_plugins(PluginSettings(autoload=False),
                                         extra=[("toy", toy), ("scripted", _policies_plugin())]))
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "scripted", "epochs": 6,
                                          "compare_baseline": False},
                                  "gates": {"g5_min_contribution": -100.0}})
    resolved = resolve_run(config, catalog)
    task = build_task(resolved, seed=0, device="cpu")
    run_episode(resolved, task, Scripted(_Context()), episode=0, emit=lambda e: None, policy_name="s", seed=11)


def test_console_prints_one_short_line_per_epoch_with_transitions_under_it(capsys):
    configure_logging("info", "console")
    _run_short_episode()
    lines = capsys.readouterr().err.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 6 and all(len(line) < 120 for line in epochs), epochs
    assert epochs[0].startswith("epoch   1/6  loss ") and " val " in epochs[0] and epochs[0].endswith("s")
    transitions = [i for i, line in enumerate(lines) if line.startswith("  ")]
    assert transitions, lines
    for i in transitions:  # each sits under its epoch line (or another transition)
        assert lines[i - 1].startswith(("epoch ", "  ")), lines
        assert " -> " in lines[i]
    assert any(" DORMANT -> GERMINATED" in lines[i] for i in transitions)
    assert sum("episode" in line for line in lines if not line.startswith("epoch")) == 1
    assert not any(line.lstrip().startswith("{") for line in lines)


def test_json_mode_keeps_the_full_epoch_and_transition_records(capsys):
    configure_logging("info", "json")
    _run_short_episode()
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    epochs = [r for r in records if r["event"] == "epoch"]
    assert len(epochs) == 6 and all(set(r) == EPOCH_KEYS for r in epochs)
    assert any(r["event"] == "seed transition" and {"slot", "blueprint", "from_stage", "to_stage", "reason"} <= set(r)
               for r in records)


def test_renderer_formats_events_and_passes_others_through():
    from esper_core.log_config import CompactConsoleRenderer

    ticks = iter([10.0, 12.5])
    renderer = CompactConsoleRenderer(structlog.dev.ConsoleRenderer(colors=False), clock=lambda: next(ticks))
    renderer(None, "info", {"event": "episode", "episode": 0, "policy": "heuristic", "epochs": 25})
    with pytest.raises(structlog.DropEvent):
        renderer(None, "info", {"event": "seed transition", "slot": "block1", "blueprint": "cnn:conv_light",
                                "from_stage": "TRAINING", "to_stage": "BLENDING", "epoch": 3, "reason": "G2 ok"})
    out = renderer(None, "info", {"event": "epoch", "episode": 0, "epoch": "3/25", "policy": "heuristic",
                                  "val_accuracy": 45.2, "train_loss": 0.81234, "applied": True,
                                  "decision": "GERMINATE slot=1 blueprint=cnn:conv_light",
                                  "slots": "block1=BLENDING block2=DORMANT block3=DORMANT"})
    assert out.splitlines() == [
        # 2.5 s for 3 epochs since the episode began: 22 more take 18 s at that pace.
        "epoch  3/25  loss 0.8123  val 45.20  block1=BLEND block2=DORM block3=DORM  GERMINATE block2 cnn:conv_light"
        "  2.5s  ETA 18s",
        "  block1 TRAINING -> BLENDING (G2 ok)",
    ]
    baseline = renderer(None, "info", {"event": "baseline: training the same host without growth", "policy": "noop"})
    assert "baseline: training the same host without growth" in baseline and "policy=noop" in baseline
