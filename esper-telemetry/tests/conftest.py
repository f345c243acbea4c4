"""A realistic recorded run, built from the core's typed events, for every test to replay.

Ten epochs, two slots: ``r0`` germinates a conv_light seed at epoch 3 that trains, blends,
shadows, goes on probation and is fossilized at epoch 10; ``r1`` germinates an attention seed
at epoch 4, causes a governor rollback at epoch 6 and is culled, then sits in embargo.
Seeds report their gain over the no-seed path while TRAINING and their dependence
(``contribution``) from BLENDING on, each with a standard error; the summary has a held-out
test accuracy beside the validation figures, for the run and for its no-seed baseline.
Every epoch has a reward and a gradient-health report (standard profile; unhealthy, with a
non-finite step, at the rollback epoch 6); the run also has an anomaly and three PPO updates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from esper_core.contracts.events import (
    Anomaly,
    DecisionMade,
    EpochEnded,
    GateEvaluated,
    GovernorRollback,
    GradientHealth,
    PPOUpdate,
    RewardComputed,
    RunEnded,
    RunStarted,
    SeedLifecycle,
    TelemetryEvent,
)
from esper_core.contracts.specs import PolicySpec
from esper_core.markers import hookimpl
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.plugins.registry import Catalog

HOST_PARAMS = 23_466
SEED_PARAMS = {"cnn:conv_light": 1_184, "cnn:attention": 136}

#: Held-out test accuracy of the run (before ``accuracy_offset``) and of its no-seed baseline.
TEST_ACCURACY = 52.1
BASELINE_TEST_ACCURACY = 49.3
#: Gain over the no-seed path while TRAINING, per (slot, epoch).
_SEED_GAIN = {("r0", 4): 0.3, ("r0", 5): 0.7, ("r1", 5): -0.2}

# (epoch, stage r0, alpha r0, contribution r0, stage r1)
_SLOT_PLAN = [
    (1, "DORMANT", 0.0, None, "DORMANT"),
    (2, "DORMANT", 0.0, None, "DORMANT"),
    (3, "DORMANT", 0.0, None, "DORMANT"),
    (4, "TRAINING", 0.0, None, "DORMANT"),
    (5, "TRAINING", 0.0, None, "TRAINING"),
    (6, "BLENDING", 0.27, 0.8, "TRAINING"),
    (7, "BLENDING", 0.73, 1.5, "CULLED"),
    (8, "BLENDING", 0.96, 2.1, "EMBARGOED"),
    (9, "SHADOWING", 1.0, 2.4, "EMBARGOED"),
    (10, "PROBATIONARY", 1.0, 2.6, "EMBARGOED"),
]
_ACCURACY = [31.0, 42.5, 44.0, 44.6, 46.0, 48.9, 47.5, 51.2, 53.0, 54.4]


def _slots(epoch: int, stage0: str, alpha0: float, contrib0: float | None,
           stage1: str) -> list[dict[str, Any]]:
    live0 = stage0 != "DORMANT"
    live1 = stage1 in ("TRAINING",)
    gain0, gain1 = _SEED_GAIN.get(("r0", epoch)), _SEED_GAIN.get(("r1", epoch))
    return [
        {"slot": "r0", "stage": stage0, "blueprint": "cnn:conv_light" if live0 else None,
         "alpha": alpha0, "contribution": contrib0, "seed_gain": gain0,
         "contribution_se": None if contrib0 is None else 0.4,
         "seed_gain_se": None if gain0 is None else 0.25,
         "seed_params": SEED_PARAMS["cnn:conv_light"] if live0 else 0},
        {"slot": "r1", "stage": stage1, "blueprint": "cnn:attention" if live1 else None,
         "alpha": 0.0, "contribution": None, "seed_gain": gain1, "contribution_se": None,
         "seed_gain_se": None if gain1 is None else 0.3,
         "seed_params": SEED_PARAMS["cnn:attention"] if live1 else 0},
    ]


def make_run(run_id: str = "run-a", *, policy: str = "heuristic", accuracy_offset: float = 0.0,
             start: float = 1_700_000_000.0) -> list[TelemetryEvent]:
    """The recorded event stream of one run, in emission order."""
    clock = iter(start + i for i in range(10_000))

    def at(**kw: Any) -> dict[str, Any]:
        return {"run_id": run_id, "episode": 0, "timestamp": next(clock), **kw}

    events: list[TelemetryEvent] = [
        RunStarted(**at(epoch=0), task="procedural", policy=policy, seed=7,
                   config={"epochs": 10, "slots": ["r0", "r1"]}),
    ]

    def lifecycle(epoch: int, slot: str, bp: str, a: str, b: str, reason: str) -> None:
        events.append(SeedLifecycle(**at(epoch=epoch), slot=slot, blueprint=bp, from_stage=a,
                                    to_stage=b, reason=reason))

    def gate(epoch: int, slot: str, name: str, target: str, passed: bool, reason: str) -> None:
        events.append(GateEvaluated(**at(epoch=epoch), slot=slot, gate=name, target=target,
                                    passed=passed, reason=reason, measurements={"value": 1.0}))

    def decide(epoch: int, op: str, slot: str | None = None, bp: str | None = None,
               reason: str = "plateau") -> None:
        events.append(DecisionMade(**at(epoch=epoch), policy=policy, op=op, slot=slot,
                                   blueprint=bp, reason=reason, confidence=0.9))

    for (epoch, s0, a0, c0, s1), acc in zip(_SLOT_PLAN, _ACCURACY, strict=True):
        slots = _slots(epoch, s0, a0, c0, s1)
        seed_params = sum(s["seed_params"] for s in slots)
        events.append(make_gradient_health(at(epoch=epoch), unhealthy=epoch == 6))
        events.append(EpochEnded(
            **at(epoch=epoch), train_loss=2.3 - 0.12 * epoch, val_loss=2.2 - 0.1 * epoch,
            val_accuracy=acc + accuracy_offset, host_params=HOST_PARAMS, seed_params=seed_params,
            seconds=1.5, slots=slots))
        terms = {"attribution": (c0 or 0.0) * 0.5, "shaping": 0.1 if s0 != "DORMANT" else 0.0,
                 "param_rent": -seed_params / 10_000}
        if epoch == 3:
            decide(epoch, "GERMINATE", "r0", "cnn:conv_light")
            gate(epoch, "r0", "g0_blueprint_fits", "GERMINATED", True, "fits budget")
            lifecycle(epoch, "r0", "cnn:conv_light", "DORMANT", "GERMINATED", "plateau")
            gate(epoch, "r0", "g1_shape_and_finite", "TRAINING", True, "shape ok")
            lifecycle(epoch, "r0", "cnn:conv_light", "GERMINATED", "TRAINING", "gate g1")
        elif epoch == 4:
            decide(epoch, "GERMINATE", "r1", "cnn:attention")
            lifecycle(epoch, "r1", "cnn:attention", "DORMANT", "GERMINATED", "plateau")
            lifecycle(epoch, "r1", "cnn:attention", "GERMINATED", "TRAINING", "gate g1")
        elif epoch == 5:
            decide(epoch, "WAIT", reason="seeds training")
            gate(epoch, "r0", "g2_gradient_readiness", "BLENDING", True, "ratio 0.31 >= 0.05")
            lifecycle(epoch, "r0", "cnn:conv_light", "TRAINING", "BLENDING", "gate g2")
            gate(epoch, "r1", "g2_gradient_readiness", "BLENDING", False, "ratio 0.01 < 0.05")
        elif epoch == 6:
            events.append(GovernorRollback(**at(epoch=epoch), slot="r1",
                                           cause="non-finite loss", step=412))
            events.append(Anomaly(**at(epoch=epoch), slot="r1", signature="nan_inf",
                                  detail="loss became NaN", value=float("inf")))
            terms["rollback_penalty"] = -1.0
            decide(epoch, "CULL", "r1", reason="rollback")
            lifecycle(epoch, "r1", "cnn:attention", "TRAINING", "CULLED", "rollback")
        elif epoch == 7:
            lifecycle(epoch, "r1", None, "CULLED", "EMBARGOED", "dwell")
        elif epoch == 8:
            gate(epoch, "r0", "g3_blending_complete", "SHADOWING", True, "alpha 0.96")
            lifecycle(epoch, "r0", "cnn:conv_light", "BLENDING", "SHADOWING", "gate g3")
        elif epoch == 9:
            lifecycle(epoch, "r0", "cnn:conv_light", "SHADOWING", "PROBATIONARY", "gate g4")
        elif epoch == 10:
            decide(epoch, "FOSSILIZE", "r0", reason="contribution 2.6 >= 0.5")
            gate(epoch, "r0", "g5_contribution", "FOSSILIZED", True, "2.6 >= 1.0")
            lifecycle(epoch, "r0", "cnn:conv_light", "PROBATIONARY", "FOSSILIZED", "gate g5")
        else:
            decide(epoch, "WAIT", reason="warming up")
        events.append(RewardComputed(**at(epoch=epoch), total=sum(terms.values()), terms=terms))
    for update in range(1, 4):
        events.append(PPOUpdate(**at(epoch=10), update=update, metrics={
            "charts/episodic_return": 1.0 + update, "losses/entropy_op": 1.6 - 0.1 * update,
            "losses/entropy_slot": 0.69 - 0.05 * update, "losses/approx_kl": 0.01 * update,
            "losses/value_loss": 2.0 / update}))
    events.append(RunEnded(**at(epoch=10), summary=make_summary(run_id, policy, accuracy_offset)))
    return events


def make_gradient_health(at: dict[str, Any], *, unhealthy: bool = False) -> GradientHealth:
    """One epoch's report of the gradient_health observer (standard profile, two layers)."""
    epoch = at["epoch"]
    seed_score = 0.2 if unhealthy else 1.0
    return GradientHealth(
        **at, profile="standard", steps=110, score=(1.0 + seed_score) / 2,
        global_norm_mean=1.5 / epoch, global_norm_max=3.0 / epoch,
        vanishing_fraction=0.4 if unhealthy else 0.0, exploding_fraction=0.0,
        nonfinite_steps=1 if unhealthy else 0,
        layers=[
            {"name": "host.segments.0", "score": 1.0, "norm_mean": 1.2 / epoch,
             "norm_max": 2.0 / epoch, "vanishing_fraction": 0.0, "exploding_fraction": 0.0,
             "nonfinite_steps": 0},
            {"name": "slots.r1.seed", "score": seed_score, "norm_mean": 1e-9,
             "norm_max": 1e-8, "vanishing_fraction": 0.8 if unhealthy else 0.0,
             "exploding_fraction": 0.0, "nonfinite_steps": 1 if unhealthy else 0},
        ],
    )


def make_summary(run_id: str, policy: str = "heuristic",
                 accuracy_offset: float = 0.0) -> dict[str, Any]:
    return {
        "run_id": run_id, "task": "procedural", "policy": policy, "seed": 7, "epochs": 10,
        "final_accuracy": _ACCURACY[-1] + accuracy_offset,
        "best_accuracy": max(_ACCURACY) + accuracy_offset,
        "test_accuracy": TEST_ACCURACY + accuracy_offset,
        "host_params": HOST_PARAMS, "seed_params": SEED_PARAMS["cnn:conv_light"],
        "wall_seconds": 15.5,
        "seeds": [
            {"slot": "r0", "blueprint": "cnn:conv_light", "germinated_epoch": 3,
             "outcome": "fossilized", "ended_epoch": 10, "seed_gain": 0.7, "contribution": 2.6},
            {"slot": "r1", "blueprint": "cnn:attention", "germinated_epoch": 4,
             "outcome": "culled", "ended_epoch": 6, "seed_gain": -0.2, "contribution": None},
        ],
        "baseline": {"final_accuracy": 50.0, "test_accuracy": BASELINE_TEST_ACCURACY,
                     "host_params": HOST_PARAMS, "seed_params": 0},
    }


def write_run_dir(root: Path, run_id: str = "run-a", **kw: Any) -> Path:
    """A run directory as the engine writes it: config.toml, events.jsonl, summary.json."""
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    events = make_run(run_id, **kw)
    (run_dir / "config.toml").write_text('task = "procedural"\nepochs = 10\n', encoding="utf-8")
    with (run_dir / "events.jsonl").open("w", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event.to_record()) + "\n")
    summary = next(e for e in events if isinstance(e, RunEnded)).summary
    (run_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return run_dir


@pytest.fixture
def recorded_events() -> list[TelemetryEvent]:
    return make_run()


@pytest.fixture
def run_factory() -> Callable[..., list[TelemetryEvent]]:
    return make_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run_dir(tmp_path / "runs")


@pytest.fixture
def run_dir_factory() -> Callable[..., Path]:
    return write_run_dir


class _StillPolicy:
    """A policy that resolves but is never built: tests that stop before the run trains."""

    @hookimpl
    def esper_register_policies(self) -> list[PolicySpec]:
        return [PolicySpec(name="still", factory=print, description="a policy never built here")]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The toy task, policy ``still`` and this distribution's sinks and observer."""
    from esper_core.testing import toy
    from esper_telemetry import plugin

    loaded = load_plugins(PluginSettings(autoload=False),
                          extra=[("toy", toy), ("p", _StillPolicy()), ("telemetry", plugin)])
    return build_catalog(loaded)
