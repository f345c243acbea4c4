"""Shared helpers of the growth experiments (``growth_recipe.py``, ``growth_study.py``).

One episode is run exactly as ``esper run`` runs it (same config resolution, task, trainer and
lifecycle), in this process, without a run directory. A *static* episode builds the model with
chosen seeds already fossilized from epoch 1 (the grown model's final architecture trained from
scratch) and trains it under the no-seed policy.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from growth_compute import ComputeModel

from esper_core.config import RunConfig
from esper_core.contracts.events import EpochEnded, RewardComputed, SeedLifecycle, TelemetryEvent
from esper_core.contracts.stages import SeedStage
from esper_core.log_config import configure_logging
from esper_core.paired import paired_difference
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.policies import make_policy
from esper_core.setup.resolve import resolve_run
from esper_core.setup.tasks import prepare_task
from esper_core.tolaria.episode import HostEpisode

# The experiments print their own progress; the engine's per-epoch log lines would drown it.
configure_logging("warning", "console")

_CATALOG = None
_COMPUTE: dict[str, ComputeModel] = {}


def catalog() -> Any:
    global _CATALOG
    if _CATALOG is None:
        _CATALOG = build_catalog(load_plugins(PluginSettings.from_env()))
    return _CATALOG


def resolve(*, task: str, policy: str, seed: int, epochs: int | None = None,
            training: Mapping[str, Any] | None = None, task_options: Mapping[str, Any] | None = None,
            kasmina: Mapping[str, Any] | None = None, gates: Mapping[str, Any] | None = None,
            policy_options: Mapping[str, Any] | None = None, run: Mapping[str, Any] | None = None,
            rewards: Mapping[str, Any] | None = None) -> Any:
    data: dict[str, Any] = {
        "run": {"task": task, "policy": policy, "seed": seed, "observers": [],
                "compare_baseline": False, **(run or {})},
        "training": dict(training or {}), "task": dict(task_options or {}),
        "kasmina": dict(kasmina or {}), "gates": dict(gates or {}), "policy": dict(policy_options or {}),
        "rewards": dict(rewards or {}),
    }
    if epochs is not None:
        data["run"]["epochs"] = epochs
    return resolve_run(RunConfig.from_dict(data), catalog())


def run_episode(resolved: Any, *, static: Mapping[str, str] | None = None,
                wrap: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """One episode of ``resolved``; ``static`` maps slot → blueprint key to fossilize at build;
    ``wrap`` turns the run's policy into the one that acts (e.g. a scripted plan around it)."""
    config = resolved.config
    _, task, slot_names = prepare_task(resolved)
    events: list[TelemetryEvent] = []
    policy = make_policy(resolved, config.policy, catalog(), slot_names, dict(config.policy_options))
    if wrap is not None:
        policy = wrap(policy)
    with HostEpisode(resolved, task, episode=0, seed=config.seed, emit=events.append,
                     policy_name=config.policy) as env:
        if static:
            fossilize_at_build(env, static, resolved)
        policy.reset(episode=0)
        step = env.start()
        while not step.done:
            step = env.step(policy.decide(report=step.report, mask=step.mask))
        result = env.result()
        test = result.test_accuracy
    curve = [e.val_accuracy for e in events if isinstance(e, EpochEnded)]
    stages = [[(s["slot"], s["stage"], s["blueprint"]) for s in e.slots]
              for e in events if isinstance(e, EpochEnded)]
    lifecycle = [(e.epoch, e.slot, e.blueprint, e.from_stage, e.to_stage) for e in events
                 if isinstance(e, SeedLifecycle)]
    counts = result.model.param_counts()
    in_forward = sum(n for slot, n in counts.seeds.items()
                     if result.model.slot(slot).stage.name in ("BLENDING", "SHADOWING", "PROBATIONARY"))
    # The compute model prices each offered blueprint, so runs offering other blueprints need their own.
    key = repr((resolved.task.name, sorted(resolved.task_options.items()), resolved.slots,
                [b.key for b in resolved.blueprints]))
    if key not in _COMPUTE:
        _COMPUTE[key] = ComputeModel(result.model, task, resolved.blueprints)
    feedback = resolved.lifecycle.training_objective == "feedback"
    # What the grown model holds at the end: fossilized seeds, and live ones in the forward
    # (blended) — a static model "of the grown model's final architecture" has both.
    final_arch = {s.slot: s.blueprint for s in result.model.slot_reports()
                  if s.stage is SeedStage.FOSSILIZED or s.stage.name in ("BLENDING", "SHADOWING", "PROBATIONARY")}
    return {
        "policy": config.policy, "seed": config.seed, "val_curve": curve,
        "final_val": result.final_accuracy, "test_accuracy": test,
        "host_params": counts.host, "added_params": counts.fossilized + in_forward,
        "final_architecture": final_arch, "stages": stages, "lifecycle": lifecycle,
        "macs": _COMPUTE[key].episode(stages, feedback=feedback), "seconds": result.seconds,
        "return": result.total_reward, "reward_terms": reward_terms(events),
    }


def reward_terms(events: Sequence[TelemetryEvent]) -> dict[str, float]:
    """Each reward term's (weighted) sum over the episode."""
    totals: dict[str, float] = {}
    for event in events:
        if isinstance(event, RewardComputed):
            for name, value in event.terms.items():
                totals[name] = totals.get(name, 0.0) + value
    return totals


def fossilize_at_build(env: HostEpisode, arch: Mapping[str, str], resolved: Any) -> None:
    """Put a fossilized seed of each ``slot: blueprint`` into the fresh model of ``env``."""
    by_key = {b.key: b for b in resolved.blueprints}
    by_name = {b.name: b for b in resolved.blueprints}
    model = env.model
    device, dtype = model.device_and_dtype()
    with env.random_stream():
        for slot_name, key in arch.items():
            spec = by_key.get(key) or by_name[key]
            slot = model.slot(slot_name)
            slot.seed = spec.factory(width=slot.point.width).to(device=device, dtype=dtype)
            slot.blueprint = spec
            slot.stage = SeedStage.FOSSILIZED
            slot.alpha = 1.0
    env.trainer.sync()


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """:func:`esper_core.paired.paired_difference` in the keys the growth study's JSON has always
    used (``std``; ``min`` and ``max`` of the differences; a t of ±inf, or 0, where the
    differences do not spread)."""
    core = paired_difference(a, b)
    d = [x - y for x, y in zip(a, b, strict=True)]
    # Only the t statistic can be None; the mean and sd always are numbers.
    mean, sd = cast(float, core["mean"]), cast(float, core["sd"])
    t = core["t"] if core["t"] is not None else (math.inf if mean > 0 else -math.inf if mean < 0 else 0.0)
    return {"mean": float(mean), "std": float(sd), "t": float(t), "n": len(d), "min": min(d), "max": max(d)}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def threads(n: int = 1) -> None:
    torch.set_num_threads(n)
