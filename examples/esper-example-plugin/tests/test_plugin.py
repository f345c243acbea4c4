"""The example plugin as Esper sees it, and the behaviour of its policy and sink."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from esper_core.config import RunConfig
from esper_core.contracts.decisions import ActionMask, Op
from esper_core.contracts.protocols import PolicyContext
from esper_core.contracts.reports import EpochReport, SlotReport
from esper_core.contracts.stages import SeedStage
from esper_core.errors import ConfigError
from esper_core.plugins.manager import PluginSettings, load_plugins
from esper_core.plugins.registry import build_catalog
from esper_core.setup.resolve import resolve_run
from esper_core.testing import sample_event_stream, toy
from esper_example_plugin import plugin
from esper_example_plugin.policy import EagerPolicy
from esper_example_plugin.timeline import TimelineOptions, TimelineSink

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("cnn:conv_light", "cnn:pointwise_mlp")


def test_the_entry_point_names_the_plugin_module() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert importlib.import_module(project["entry-points"]["esper"]["example"]) is plugin


def test_importing_and_registering_does_not_import_torch() -> None:
    code = ("import sys, esper_example_plugin.plugin as p\n"
            "specs = p.esper_register_blueprints() + p.esper_register_policies() + p.esper_register_telemetry_sinks()\n"
            "print(len(specs), specs[0].param_estimate(32), 'torch' in sys.modules)")
    # The package's src/ first, so this also runs before the distribution is installed.
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": path})
    assert out.stdout.split() == ["3", str(4 * 32 * 32 + 3 * 32), "False"]


def test_registers_through_the_plugin_manager() -> None:
    loaded = load_plugins(PluginSettings(autoload=False), extra=[("example", plugin)])
    catalog = build_catalog(loaded)
    assert loaded.failures == []
    assert catalog.contributions["example"] == {
        "blueprints": ["cnn:pointwise_mlp"], "policies": ["eager"], "sinks": ["timeline"]}
    assert catalog.blueprints.resolve("pointwise_mlp", "cnn").identity_at_init


def _report(epoch: int, *slots: SlotReport) -> EpochReport:
    return EpochReport(episode=0, epoch=epoch, max_epochs=8, train_loss=1.0, val_loss=1.0, val_accuracy=50.0,
                       host_params=1000, seed_params=0, slots=slots, max_seeds=2)


def _slot(index: int, stage: str = "DORMANT", contribution: float | None = None) -> SlotReport:
    return SlotReport(slot=f"block{index + 2}", index=index, width=8, stage=SeedStage[stage],
                      contribution=contribution)


def _mask(*, germinate: tuple[bool, bool], fossilize: tuple[bool, bool] = (False, False),
          cull: tuple[bool, bool] = (False, False), blueprints: tuple[bool, bool] = (True, True)) -> ActionMask:
    rows = {op: (False, False) for op in Op}
    rows.update({Op.GERMINATE: germinate, Op.FOSSILIZE: fossilize, Op.CULL: cull})
    return ActionMask(slots=[rows[op] for op in Op], blueprints=blueprints, blueprint_keys=KEYS)


def _policy() -> EagerPolicy:
    context = PolicyContext(slot_names=("block2", "block3"), blueprint_keys=KEYS, topology="cnn",
                            max_epochs=8, seed=0)
    return EagerPolicy.from_context(context=context)


def test_eager_germinates_at_once_in_the_deepest_slot_rotating_blueprints() -> None:
    policy = _policy()
    first = policy.decide(report=_report(1, _slot(0), _slot(1)), mask=_mask(germinate=(True, True)))
    assert (first.op, first.slot, first.blueprint) == (Op.GERMINATE, 1, "cnn:conv_light")
    second = policy.decide(report=_report(2, _slot(0), _slot(1, "TRAINING")), mask=_mask(germinate=(True, False)))
    assert (second.op, second.slot, second.blueprint) == (Op.GERMINATE, 0, "cnn:pointwise_mlp")
    policy.reset(episode=1)
    again = policy.decide(report=_report(1, _slot(0), _slot(1)), mask=_mask(germinate=(True, True)))
    assert again.blueprint == "cnn:conv_light"


def test_eager_keeps_helpful_seeds_culls_harmful_ones_and_waits_otherwise() -> None:
    policy = _policy()
    keep = policy.decide(report=_report(5, _slot(0, "PROBATIONARY", 1.5), _slot(1)),
                         mask=_mask(germinate=(False, True), fossilize=(True, False), cull=(True, False)))
    assert (keep.op, keep.slot) == (Op.FOSSILIZE, 0) and "+1.50" in keep.reason
    drop = policy.decide(report=_report(5, _slot(0, "PROBATIONARY", -0.5), _slot(1)),
                         mask=_mask(germinate=(False, False), fossilize=(True, False), cull=(True, False)))
    assert (drop.op, drop.slot) == (Op.CULL, 0)
    no_slot = policy.decide(report=_report(6, _slot(0, "FOSSILIZED"), _slot(1, "TRAINING")),
                            mask=_mask(germinate=(False, False)))
    assert no_slot.op is Op.WAIT and no_slot.reason == "no free slot"
    no_blueprint = policy.decide(report=_report(6, _slot(0), _slot(1)),
                                 mask=_mask(germinate=(True, True), blueprints=(False, False)))
    assert no_blueprint.op is Op.WAIT and no_blueprint.reason == "no blueprint allowed"


def test_eager_rejects_options() -> None:
    context = PolicyContext(slot_names=("block3",), blueprint_keys=KEYS, topology="cnn", max_epochs=8, seed=0,
                            options={"patience": 3})
    with pytest.raises(ConfigError, match="takes no options, got 'patience'"):
        EagerPolicy.from_context(context=context)


def test_timeline_lines_are_epoch_kind_record(tmp_path: Path) -> None:
    sink = TimelineSink.from_options(run_dir=None, options={"path": str(tmp_path / "t.tsv")})
    events = sample_event_stream()
    for event in events:
        sink.emit(event)
    sink.close()
    sink.emit(events[0])  # after close: ignored
    rows = [line.split("\t", 2) for line in (tmp_path / "t.tsv").read_text().splitlines()]
    assert [(int(r[0]), r[1]) for r in rows] == [(e.epoch, e.kind) for e in events]


def test_timeline_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"telemetry sink 'timeline': unknown option 'pth' \(did you mean 'path'\?\)"):
        TimelineSink.from_options(run_dir=None, options={"pth": "t.tsv"})
    with pytest.raises(ConfigError, match="telemetry sink 'timeline' option 'path' = 5 is invalid; expected a path"):
        TimelineSink.from_options(run_dir=None, options={"path": 5})
    with pytest.raises(ConfigError, match="needs a run directory"):
        TimelineSink.from_options(run_dir=None, options={})


def test_timeline_declares_its_options_so_a_switched_off_table_is_checked() -> None:
    # Esper checks [telemetry.timeline] when a run is resolved, also in a run that leaves the sink out.
    (spec,) = plugin.esper_register_telemetry_sinks()
    assert spec.options.resolve() is TimelineOptions
    catalog = build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("example", plugin)]))
    run = {"task": "toy", "policy": "eager", "telemetry": []}
    with pytest.raises(ConfigError, match="telemetry sink 'timeline': unknown option 'pth'"):
        resolve_run(RunConfig.from_dict({"run": run, "telemetry": {"timeline": {"pth": "t.tsv"}}}), catalog)
    resolved = resolve_run(RunConfig.from_dict({"run": run, "telemetry": {"timeline": {"path": "t.tsv"}}}), catalog)
    assert resolved.sinks == ()
