"""The run engine on the toy topology, with scripted policies (no other distribution needed)."""

from __future__ import annotations

import json
import types

import pytest
import torch
from engine_helpers import Scripted, _policies_plugin

from esper_core import hookimpl
from esper_core.config import RunConfig
from esper_core.contracts import GateResult, Op, PolicySpec, SeedStage, SlotReport
from esper_core.errors import ConfigError, UnknownNameError
from esper_core.files import write_json
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.presentation.run_report import format_summary
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir, default_run_dir
from esper_core.testing import toy
from esper_core.tolaria.job import execute_run
from esper_core.tolaria.ledger import SeedLedger
from esper_core.tolaria.masks import build_action_mask


@pytest.fixture
def catalog():
    loaded = load_plugins(PluginSettings(autoload=False),
                          extra=[("toy", toy), ("scripted", _policies_plugin())])
    return build_catalog(loaded)


def _run(catalog, tmp_path, **run):
    config = RunConfig.from_dict({
        "run": {"task": "toy", "policy": "scripted", "epochs": 12, **run},
        "gates": {"g5_min_contribution": -100.0},
    })
    out = create_run_dir(tmp_path / "run")
    return execute_run(resolve_run(config, catalog), catalog, out), out


def test_scripted_seed_goes_through_the_whole_lifecycle(catalog, tmp_path):
    summary, out = _run(catalog, tmp_path)
    assert [s["outcome"] for s in summary["seeds"]] == ["fossilized"]
    seed = summary["seeds"][0]
    assert seed["slot"] == "hidden2" and seed["blueprint"] == "toy:residual_linear"
    assert seed["germinated_epoch"] == 1 and seed["ended_epoch"] > 1
    assert summary["seed_params"] == 16 * 16 + 16
    assert summary["baseline"]["seed_params"] == 0
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    path = [(e["from_stage"], e["to_stage"]) for e in events if e["kind"] == "seed_lifecycle"]
    assert path == [("DORMANT", "GERMINATED"), ("GERMINATED", "TRAINING"), ("TRAINING", "BLENDING"),
                    ("BLENDING", "SHADOWING"), ("SHADOWING", "PROBATIONARY"), ("PROBATIONARY", "FOSSILIZED")]
    rewards = [e for e in events if e["kind"] == "reward"]
    assert len(rewards) == 12 and all(set(r["terms"]) >= {"param_rent", "stage_shaping"} for r in rewards)
    assert all(e["run_id"] == "run" for e in events)
    saved = torch.load(out / "model.pt", weights_only=False)
    assert saved["task"] == "toy"
    fossil = {"slot": "hidden2", "stage": "FOSSILIZED", "blueprint": "toy:residual_linear", "alpha": 1.0}
    assert fossil in saved["architecture"]
    text = format_summary(summary)
    assert "fossilized" in text and "noop (baseline)" in text


def test_masked_decisions_are_refused_and_recorded(catalog, tmp_path):
    summary, out = _run(catalog, tmp_path, policy="rogue", compare_baseline=False, epochs=2)
    decisions = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()
                 if '"kind": "decision"' in line]
    assert all(not d["applied"] and d["outcome"].startswith("refused") for d in decisions)
    assert summary["seeds"] == [] and "baseline" not in summary


def _gated_run(catalog, tmp_path, *, mask_by_gates):
    # G5 can never pass: a PROBATIONARY seed is never fossilized, and the probation timeout culls it.
    config = RunConfig.from_dict({
        "run": {"task": "toy", "policy": "insistent", "epochs": 12, "compare_baseline": False},
        "gates": {"g5_min_contribution": 100.0},
        "kasmina": {"mask_by_gates": mask_by_gates},
    })
    out = create_run_dir(tmp_path / f"run-{mask_by_gates}")
    summary = execute_run(resolve_run(config, catalog), catalog, out)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    asked = [e for e in events if e["kind"] == "decision" and e["op"] == "FOSSILIZE"]
    g5 = [e for e in events if e["kind"] == "gate" and e["target"] == "FOSSILIZED"]
    return summary, asked, g5


def test_fossilize_is_offered_only_where_g5_would_pass_and_a_refusal_names_the_gate(catalog, tmp_path):
    summary, asked, g5 = _gated_run(catalog, tmp_path, mask_by_gates=True)
    assert asked and all(not d["applied"] for d in asked)
    assert all("not allowed by the action mask: the gate into FOSSILIZED would refuse it" in d["outcome"]
               and "lower bound" in d["outcome"] for d in asked)
    assert g5 == []  # refused by the mask: the gate itself was never asked, so nothing was reported
    assert [s["outcome"] for s in summary["seeds"]] == ["culled"]
    # Offered by stage: the same decisions reach the gate, which refuses each one.
    summary, asked_by_stage, g5 = _gated_run(catalog, tmp_path, mask_by_gates=False)
    assert len(asked_by_stage) == len(asked) and len(g5) == len(asked)
    assert all(not e["passed"] and "lower bound" in e["reason"] for e in g5)
    assert [s["outcome"] for s in summary["seeds"]] == ["culled"]


def test_under_manual_advance_advance_is_offered_only_where_the_next_gate_would_pass(catalog, tmp_path):
    def advances(mask_by_gates):
        config = RunConfig.from_dict({
            "run": {"task": "toy", "policy": "insistent", "epochs": 12, "compare_baseline": False},
            "gates": {"g5_min_contribution": 100.0, "g3_min_epochs": 2},
            "kasmina": {"mask_by_gates": mask_by_gates, "auto_advance": False},
        })
        out = create_run_dir(tmp_path / f"manual-{mask_by_gates}")
        execute_run(resolve_run(config, catalog), catalog, out)
        events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
        asked = [e for e in events if e["kind"] == "decision" and e["op"] == "ADVANCE"]
        stages = [e["to_stage"] for e in events if e["kind"] == "seed_lifecycle"]
        return asked, stages

    asked, stages = advances(True)
    # Every ADVANCE offered was accepted: the seed walked to PROBATIONARY by decisions alone.
    assert asked and all(d["applied"] and "refused" not in d["outcome"] for d in asked)
    assert stages[:5] == ["GERMINATED", "TRAINING", "BLENDING", "SHADOWING", "PROBATIONARY"]
    # Offered by stage, ADVANCE is asked for while a gate still refuses it (G3 needs 2 blending epochs).
    asked_by_stage, stages_by_stage = advances(False)
    assert any(not d["applied"] and "blending epochs" in d["outcome"] for d in asked_by_stage)
    assert stages_by_stage[:5] == stages[:5]


def test_several_episodes(catalog, tmp_path):
    summary, _ = _run(catalog, tmp_path, episodes=2, epochs=3, compare_baseline=False)
    assert summary["episodes"] == 2 and len(summary["per_episode"]) == 2


def test_resolution_errors(catalog):
    with pytest.raises(UnknownNameError, match="unknown task 'toys'"):
        resolve_run(RunConfig.from_dict({"run": {"task": "toys"}}), catalog)
    with pytest.raises(UnknownNameError, match="unknown toy blueprint 'cnn:conv'"):
        resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": "noop", "blueprints": ["cnn:conv"]}}),
                    catalog)
    with pytest.raises(UnknownNameError, match="alpha schedule"):
        resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": "noop"},
                                         "kasmina": {"alpha_schedule": "step"}}), catalog)
    with pytest.raises(ConfigError,
                       match="^task 'toy': unknown option 'colour'; allowed options: batch_size, classes, features"):
        resolved = resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": "noop"}, "task": {"colour": 1}}),
                               catalog)
        resolved.task.factory(seed=0, device="cpu", options=resolved.task_options)


def test_a_blueprint_named_twice_or_of_another_topology_is_refused_by_name():
    from esper_core.contracts import BlueprintSpec

    class Other:
        @hookimpl
        def esper_register_blueprints(self):
            return [BlueprintSpec(name="wide", topology="grid", factory=toy.identity, param_estimate=lambda w: 0,
                                  description="another topology's blueprint")]

    plugins = [("toy", toy), ("p", _policies_plugin()), ("other", Other())]
    catalog = build_catalog(load_plugins(PluginSettings(autoload=False), extra=plugins))

    def resolve(*names):
        return resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": "noop", "blueprints": list(names)}}),
                           catalog)

    with pytest.raises(ConfigError, match=r"^\[run\] blueprints names 'residual_linear' twice$"):
        resolve("residual_linear", "noop", "residual_linear")
    with pytest.raises(ConfigError, match=r"^\[run\] blueprints names 'toy:noop' twice \(as 'noop' and 'toy:noop'\)$"):
        resolve("noop", "toy:noop")
    with pytest.raises(ConfigError, match=r"^blueprint 'grid:wide' is a grid blueprint; this task's host takes toy "
                                          r"blueprints \(see `esper blueprints --topology toy`\)$"):
        resolve("grid:wide")
    assert resolve("noop", "toy:residual_linear").blueprint_keys == ("toy:noop", "toy:residual_linear")


def test_resolved_config_fills_task_defaults(catalog):
    resolved = resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": "noop"}}), catalog)
    assert resolved.epochs == 6 and resolved.training.lr == 1e-2
    assert resolved.blueprint_keys == ("toy:residual_linear",)
    assert resolved.lifecycle.blending_epochs == 2
    table = resolved.to_toml_dict()
    assert table["run"]["blueprints"] == ["residual_linear"] and table["kasmina"]["blending_epochs"] == 2


def _slot(stage, width=8):
    return SlotReport(slot="s", index=0, width=width, stage=stage)


def test_action_mask_rules(catalog):
    bps = catalog.blueprints.for_topology("toy")
    slots = [_slot(SeedStage.DORMANT), _slot(SeedStage.TRAINING), _slot(SeedStage.PROBATIONARY)]
    mask = build_action_mask(slots, bps, max_seeds=3, param_budget=None, seed_params_in_use=0, auto_advance=True)
    assert mask.slots[Op.GERMINATE] == (True, False, False)
    assert mask.slots[Op.CULL] == (False, True, True)
    assert mask.slots[Op.FOSSILIZE] == (False, False, True)
    assert mask.slots[Op.ADVANCE] == (False, False, False)
    manual = build_action_mask(slots, bps, max_seeds=3, param_budget=None, seed_params_in_use=0, auto_advance=False)
    assert manual.slots[Op.ADVANCE] == (False, True, False)
    capped = build_action_mask(slots, bps, max_seeds=2, param_budget=None, seed_params_in_use=0, auto_advance=True)
    assert not any(capped.slots[Op.GERMINATE])
    budget = build_action_mask(slots, bps, max_seeds=3, param_budget=50, seed_params_in_use=0, auto_advance=True)
    assert budget.blueprints == (True, False)  # noop (0 params) fits, 8*8+8 = 72 does not
    broke = build_action_mask(slots, bps[1:], max_seeds=3, param_budget=50, seed_params_in_use=0, auto_advance=True)
    assert not any(broke.slots[Op.GERMINATE])
    # What each germination would cost, per slot and blueprint, and the budget left.
    assert budget.costs == tuple((0, s.width * s.width + s.width) for s in slots)
    assert budget.cost(0, bps[1].key) == 72 and budget.budget_left == 50
    assert mask.budget_left is None


def test_action_mask_offers_fossilize_and_advance_only_where_the_gates_would_pass(catalog):
    bps = catalog.blueprints.for_topology("toy")
    slots = [_slot(SeedStage.TRAINING), _slot(SeedStage.PROBATIONARY), _slot(SeedStage.PROBATIONARY),
             _slot(SeedStage.DORMANT)]
    refuse = GateResult(gate="g", target=SeedStage.FOSSILIZED, passed=False, reason="no")
    accept = GateResult(gate="g", target=SeedStage.FOSSILIZED, passed=True, reason="yes")
    advance = GateResult(gate="g", target=SeedStage.BLENDING, passed=True, reason="yes")
    previews = [advance, refuse, accept, None]
    kwargs = {"max_seeds": 4, "param_budget": None, "seed_params_in_use": 0}
    gated = build_action_mask(slots, bps, auto_advance=False, gate_previews=previews, **kwargs)
    assert gated.slots[Op.FOSSILIZE] == (False, False, True, False)
    assert gated.slots[Op.ADVANCE] == (True, False, False, False)
    assert gated.slots[Op.CULL] == (True, True, True, False)  # culling needs no gate
    # A refusing gate takes ADVANCE away too; auto-advance never offers it.
    held = build_action_mask(slots, bps, auto_advance=False, gate_previews=[refuse, refuse, accept, None], **kwargs)
    assert held.slots[Op.ADVANCE] == (False,) * 4
    assert not any(build_action_mask(slots, bps, auto_advance=True, gate_previews=previews, **kwargs).slots[Op.ADVANCE])
    # Without previews, by stage alone.
    by_stage = build_action_mask(slots, bps, auto_advance=False, **kwargs)
    assert by_stage.slots[Op.FOSSILIZE] == (False, True, True, False)
    with pytest.raises(ValueError, match="one entry per slot"):
        build_action_mask(slots, bps, auto_advance=True, gate_previews=previews[:2], **kwargs)


def test_ledger_tracks_outcomes():
    from esper_core.contracts import SeedLifecycle

    ledger = SeedLedger()
    ledger.on_transition(SeedLifecycle(epoch=2, slot="a", blueprint="b", from_stage="DORMANT", to_stage="GERMINATED"))
    ledger.on_epoch((SlotReport(slot="a", index=0, width=4, stage=SeedStage.TRAINING, seed_gain=0.7, seed_params=9),))
    ledger.on_epoch((SlotReport(slot="a", index=0, width=4, stage=SeedStage.BLENDING, contribution=1.5, seed_params=9,
                                seed_gain=0.1),))  # a gain outside TRAINING is not the seed's gain
    ledger.on_transition(SeedLifecycle(epoch=5, slot="a", blueprint="b", from_stage="BLENDING", to_stage="CULLED"))
    assert ledger.records[0].to_dict() == {"slot": "a", "blueprint": "b", "germinated_epoch": 2, "outcome": "culled",
                                           "ended_epoch": 5, "seed_gain": 0.7, "contribution": 1.5, "params": 9}


def test_run_dir_rules(tmp_path):
    first = default_run_dir("toy", "scripted", root=tmp_path)
    first.mkdir(parents=True)
    assert default_run_dir("toy", "scripted", root=tmp_path) != first
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        create_run_dir(tmp_path / "full")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        create_run_dir(tmp_path / "afile")
    write_json(tmp_path / "s.json", {"a": 1})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_missing_baseline_policy_is_a_clear_error(tmp_path):
    loaded = load_plugins(PluginSettings(autoload=False), extra=[("toy", toy)])
    module = types.ModuleType("only_scripted")

    @hookimpl
    def esper_register_policies():
        return [PolicySpec(name="scripted", factory=lambda context: Scripted(context), description="t")]

    module.esper_register_policies = esper_register_policies
    loaded.register(module, name="only", distribution="only", version="1")
    cat = build_catalog(loaded)
    with pytest.raises(ConfigError, match="no installed plugin declares a baseline policy.*--no-compare-baseline"):
        _run(cat, tmp_path, epochs=1)


def test_toy_task_is_not_installed_as_a_plugin():
    names = [p.name for p in load_plugins(PluginSettings(autoload=False)).plugins]
    assert names == ["core"]


def test_thread_choice():
    from esper_core.setup.seeding import choose_threads

    assert choose_threads(3, "cpu", 10) == 3
    assert choose_threads(0, "cpu", 10_000) == 1
    assert choose_threads(0, "cpu", 50_000_000) is None
    assert choose_threads(0, "cuda", 10_000) is None


def test_device_resolution():
    from esper_core.setup.seeding import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_host_learning_rate_schedules(catalog):
    base = {"run": {"task": "toy", "policy": "noop", "epochs": 10}}

    def settings(**training):
        return resolve_run(RunConfig.from_dict({**base, "training": training}), catalog).training

    assert [settings().host_lr(e, 10) for e in (1, 10)] == [1e-2, 1e-2]
    step = settings(lr_schedule="step", lr_step_epoch=4, lr_step_factor=0.5, lr=0.2)
    assert [step.host_lr(e, 10) for e in (1, 3, 4, 10)] == [0.2, 0.2, 0.1, 0.1]
    cosine = settings(lr_schedule="cosine", lr=1.0)
    assert cosine.host_lr(1, 10) == 1.0 and cosine.host_lr(6, 10) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="lr_schedule = 'warmup' is invalid"):
        settings(lr_schedule="warmup")


def test_step_schedule_is_applied_to_the_host_only(catalog, tmp_path):
    config = RunConfig.from_dict({
        "run": {"task": "toy", "policy": "scripted", "epochs": 3, "compare_baseline": False},
        "training": {"lr_schedule": "step", "lr_step_epoch": 2, "lr_step_factor": 0.25},
    })
    from esper_core.tolaria import episode as episode_module

    seen = []
    original = episode_module.SeedTrainer.train_epoch

    def spy(self, batches, loss_fn, *, epoch):
        seen.append((epoch, self.host_optimizer.param_groups[0]["lr"],
                     [o.param_groups[0]["lr"] for o in self.seed_optimizers.values()]))
        return original(self, batches, loss_fn, epoch=epoch)

    episode_module.SeedTrainer.train_epoch = spy
    try:
        execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "r"))
    finally:
        episode_module.SeedTrainer.train_epoch = original
    assert [round(lr, 6) for _, lr, _ in seen] == [0.01, 0.0025, 0.0025]
    seed_lrs = [lr for _, _, lrs in seen for lr in lrs]
    assert seed_lrs and all(lr == 0.01 for lr in seed_lrs)  # the seed germinated at epoch 1 keeps seed_lr


def test_a_sink_that_cannot_start_is_a_named_error(catalog, tmp_path):
    from esper_core.contracts import SinkSpec
    from esper_core.errors import PluginError

    def broken(*, run_dir, options):
        raise OSError("read-only file system")

    module = types.ModuleType("broken_sink")
    module.esper_register_telemetry_sinks = hookimpl(lambda: [SinkSpec(name="broken", factory=broken,
                                                                         description="t")])
    loaded = load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("scripted", _policies_plugin()),
                                                                 ("broken", module)])
    cat = build_catalog(loaded)
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "noop", "telemetry": ["jsonl", "broken"]}})
    with pytest.raises(PluginError, match="telemetry sink 'broken' failed to start: OSError: read-only"):
        execute_run(resolve_run(config, cat), cat, create_run_dir(tmp_path / "r"))
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "noop"},
                                  "telemetry": {"jsonl": {"max_bytes": -1}}})
    with pytest.raises(ConfigError, match="max_bytes"):
        execute_run(resolve_run(config, cat), cat, create_run_dir(tmp_path / "r2"))


class _Flagger:
    """Reports one anomaly per epoch for every live seed."""

    closed = 0

    def __init__(self, model, options):
        self.signature = options.get("signature", "odd")

    def after_epoch(self, *, report):
        from esper_core.contracts import Anomaly

        return [Anomaly(slot=s.slot, signature=self.signature) for s in report.slots if s.live]

    def close(self):
        _Flagger.closed += 1


def _observer_catalog():
    from esper_core.contracts import ObserverSpec, RewardTermSpec

    module = types.ModuleType("flagger")
    module.esper_register_observers = hookimpl(lambda: [ObserverSpec(
        name="flagger", factory=lambda model, options: _Flagger(model, options), description="t")])
    module.esper_register_reward_terms = hookimpl(lambda: [RewardTermSpec(
        name="anomaly_count", compute=lambda ctx: -float(len(ctx.anomalies)), description="t",
        presets={"shaped": 1.0})])
    loaded = load_plugins(PluginSettings(autoload=False),
                          extra=[("toy", toy), ("scripted", _policies_plugin()), ("flagger", module)])
    return build_catalog(loaded)


def test_observers_emit_events_and_feed_the_reward_terms(tmp_path):
    cat = _observer_catalog()
    _Flagger.closed = 0
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "scripted", "epochs": 3,
                                          "compare_baseline": False},
                                  "observers": {"flagger": {"signature": "weird"}}})
    out = create_run_dir(tmp_path / "r")
    execute_run(resolve_run(config, cat), cat, out)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    anomalies = [e for e in events if e["kind"] == "anomaly"]
    assert [(a["epoch"], a["slot"], a["signature"]) for a in anomalies] == [(2, "hidden2", "weird"),
                                                                           (3, "hidden2", "weird")]
    rewards = [e["terms"]["anomaly_count"] for e in events if e["kind"] == "reward"]
    assert rewards == [0.0, -1.0, -1.0]
    assert _Flagger.closed == 1


def test_observers_can_be_switched_off(tmp_path):
    cat = _observer_catalog()
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "scripted", "epochs": 2, "observers": "",
                                          "compare_baseline": False}})
    resolved = resolve_run(config, cat)
    assert resolved.observers == ()
    with pytest.raises(UnknownNameError, match="unknown observer 'flager'"):
        resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": "noop", "observers": ["flager"]}}), cat)


def test_deterministic_sets_the_torch_switches() -> None:
    # In a subprocess: the switches are process-wide and would leak into later tests.
    import subprocess
    import sys

    code = (
        "import os, torch\n"
        "from esper_core.setup.seeding import seed_everything\n"
        "before = torch.are_deterministic_algorithms_enabled()\n"
        "seed_everything(3, deterministic=True)\n"
        "print(before, torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,\n"
        "      torch.backends.cudnn.benchmark, os.environ['CUBLAS_WORKSPACE_CONFIG'], torch.initial_seed())\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["False", "True", "True", "False", ":4096:8", "3"]


def test_summary_says_what_seeds_still_live_at_the_end_hold():
    def summary(*outcomes):
        seeds = [{"slot": f"s{i}", "blueprint": "toy:residual_linear", "germinated_epoch": 2,
                  "outcome": o, "ended_epoch": None if o == "live" else 5, "contribution": 1.0,
                  "params": 100 * (i + 1)} for i, o in enumerate(outcomes)]
        base = {"policy": "noop", "final_accuracy": 50.0, "best_accuracy": 50.0, "host_params": 10,
                "seed_params": 0}
        return {"run_id": "r", "task": "toy", "policy": "heuristic", "seed": 0, "epochs": 5,
                "wall_seconds": 1.0, "final_accuracy": 52.5, "best_accuracy": 52.5, "host_params": 10,
                "seed_params": 100 if outcomes[0] == "fossilized" else 0, "seeds": seeds, "baseline": base}

    assert ("gain over the no-growth baseline: +2.50 points of final validation accuracy for 0 fossilized "
            "parameters (the 1 seed still live at the end holds 100 more)" in format_summary(summary("live")))
    text = format_summary(summary("fossilized", "live", "live"))
    assert "for 100 fossilized parameters (the 2 seeds still live at the end hold 500 more)" in text
    assert "still live" not in format_summary(summary("fossilized", "culled"))


def test_summary_headline_is_the_held_out_test_split_when_there_is_one():
    base = {"policy": "noop", "final_accuracy": 50.0, "best_accuracy": 51.0, "test_accuracy": 48.0,
            "host_params": 10, "seed_params": 0}
    summary = {"run_id": "r", "task": "toy", "policy": "heuristic", "seed": 0, "epochs": 5, "wall_seconds": 1.0,
               "final_accuracy": 60.0, "best_accuracy": 60.0, "test_accuracy": 51.25, "host_params": 10,
               "seed_params": 7, "baseline": base,
               "seeds": [{"slot": "s", "blueprint": "toy:x", "germinated_epoch": 2, "outcome": "fossilized",
                          "ended_epoch": 9, "seed_gain": 0.4, "contribution": 6.0, "params": 7}]}
    text = format_summary(summary)
    assert "gain over the no-growth baseline: +3.25 points of test accuracy for 7 fossilized parameters" in text
    assert "test acc %" in text.splitlines()[2] and "51.25" in text and "48.00" in text
    assert "gain (TRAINING)" in text and "dependence" in text


def test_the_baseline_records_its_validation_curve(catalog, tmp_path):
    # The report draws the baseline per epoch beside the run, not as a flat line at its end.
    baseline = _run(catalog, tmp_path, epochs=4)[0]["baseline"]
    curve = baseline["val_accuracy_per_epoch"]
    assert len(curve) == 4 and curve[-1] == baseline["final_accuracy"]
    assert max(curve) == baseline["best_accuracy"]
