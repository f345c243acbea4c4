"""A whole ``esper run`` job: run directory, telemetry, episodes, baseline and summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
import structlog
import torch

from esper_core.config import dump_toml
from esper_core.contracts.events import RunEnded, RunStarted, TelemetryEvent
from esper_core.contracts.protocols import PolicyContext, PolicyTrainingContext, Sink, Task
from esper_core.errors import ConfigError, EsperError, PluginError
from esper_core.plugins.registry import Catalog
from esper_core.telemetry.hub import TelemetryHub
from esper_core.tolaria.episode import EpisodeResult, run_episode, save_model
from esper_core.tolaria.policy_training import TRAINING_OPTIONS, TrainingSession
from esper_core.tolaria.resolve import ResolvedRun
from esper_core.tolaria.rundir import CONFIG_FILE, MODEL_FILE, SUMMARY_FILE, write_atomic, write_json
from esper_core.tolaria.seeding import choose_threads, resolve_device, seed_everything
from esper_core.tolaria.vector import build_task

logger = structlog.get_logger(__name__)

BASELINE_POLICY = "noop"


def prepare_task(resolved: ResolvedRun) -> tuple[str, Task, tuple[str, ...]]:
    """Seed, pick the device, build the run's task and learn its slot names; set CPU threads."""
    config = resolved.config
    device = resolve_device(config.device)
    seed_everything(config.seed, deterministic=config.deterministic)
    task = build_task(resolved, seed=config.seed, device=device)
    probe_host = task.build_host()
    slot_names = resolved.slots or tuple(p.name for p in probe_host.injection_points)
    threads = choose_threads(config.threads, device, sum(p.numel() for p in probe_host.parameters()))
    if threads is not None:
        torch.set_num_threads(threads)
    return device, task, slot_names


def _policy_context(resolved: ResolvedRun, slot_names: tuple[str, ...], options: dict[str, Any]) -> PolicyContext:
    return PolicyContext(
        slot_names=slot_names,
        blueprint_keys=resolved.blueprint_keys,
        topology=resolved.task.topology,
        max_epochs=resolved.epochs,
        seed=resolved.config.seed,
        options=options,
    )


def make_policy(resolved: ResolvedRun, name: str, catalog: Catalog, slot_names: tuple[str, ...],
                options: dict[str, Any]) -> Any:
    """Build policy ``name`` for the episodes of ``resolved``."""
    return catalog.policies.get(name).factory(context=_policy_context(resolved, slot_names, options))


def _open_sinks(resolved: ResolvedRun, run_dir: Path) -> TelemetryHub:
    sinks: list[Sink] = []
    for spec in resolved.sinks:
        try:
            options = resolved.config.telemetry_options.get(spec.name, {})
            sinks.append(spec.factory(run_dir=run_dir, options=options))
        except Exception as exc:
            for sink in sinks:
                sink.close()
            if isinstance(exc, EsperError):
                raise
            raise PluginError(f"telemetry sink {spec.name!r} failed to start: "
                              f"{type(exc).__name__}: {exc}") from exc
    return TelemetryHub(sinks)


def execute_run(resolved: ResolvedRun, catalog: Catalog, run_dir: Path, *, resume: bool = False) -> dict[str, Any]:
    """Run every episode (and the baseline) — or train a learned policy — write the run
    directory and return the summary."""
    started = time.perf_counter()
    config = resolved.config
    run_id = run_dir.name
    structlog.contextvars.bind_contextvars(run_id=run_id)
    device, task, slot_names = prepare_task(resolved)
    options = dict(config.policy_options)
    training = resolved.policy.learned and "checkpoint" not in options
    given = sorted(k for k in TRAINING_OPTIONS if k in options)
    if given and not training:
        why = ("it is not a learned policy" if not resolved.policy.learned
               else "--policy-checkpoint runs a trained policy without training it")
        raise ConfigError(f"[policy] {given[0]} (--{given[0].replace('_', '-')}) only applies when "
                          f"training a learned policy; policy {resolved.policy.name!r}: {why}")
    if resume and not training:
        raise ConfigError(f"--resume continues training a learned policy; policy {resolved.policy.name!r} "
                          "is not being trained in this run")
    context = _policy_context(resolved, slot_names, options)
    if training:
        assert resolved.policy.trainer is not None
        trainer = resolved.policy.trainer(context=PolicyTrainingContext(policy=context, device=device,
                                                                        resolved=resolved))
    else:
        policy = resolved.policy.factory(context=context)
    # Written only once the task and policy exist, so a bad option leaves --out empty for a retry.
    write_atomic(run_dir / CONFIG_FILE, dump_toml(resolved.to_toml_dict()))

    hub = _open_sinks(resolved, run_dir)

    def emit(event: TelemetryEvent) -> None:
        hub.emit(attrs.evolve(event, run_id=run_id))

    try:
        emit(RunStarted(task=resolved.task.name, policy=resolved.policy.name, seed=config.seed,
                        config=resolved.to_toml_dict()))
        if training:
            session = TrainingSession(resolved=resolved, run_dir=run_dir, device=device, emit=emit,
                                      resume=resume)
            summary = {"run_id": run_id, "task": resolved.task.name, "policy": resolved.policy.name,
                       "seed": config.seed, "device": device, "epochs": resolved.epochs, "training": True,
                       **trainer.train(session=session)}
        else:
            results: list[EpisodeResult] = []
            for episode in range(config.episodes):
                results.append(run_episode(resolved, task, policy, episode=episode, emit=emit,
                                           policy_name=resolved.policy.name))
                hub.flush()
            save_model(results[-1], run_dir / MODEL_FILE, task=resolved.task.name,
                       blueprint_keys=resolved.blueprint_keys)
            summary = _summary(resolved, run_id, device, results)
            if config.compare_baseline:
                summary["baseline"] = _baseline(resolved, catalog, task, slot_names)
        summary["wall_seconds"] = round(time.perf_counter() - started, 3)
        write_json(run_dir / SUMMARY_FILE, summary)
        emit(RunEnded(episode=summary.get("episodes", 1) - 1, epoch=resolved.epochs, summary=summary))
    finally:
        hub.close()
        structlog.contextvars.unbind_contextvars("run_id")
    return summary


def _baseline(resolved: ResolvedRun, catalog: Catalog, task: Task, slot_names: tuple[str, ...]) -> dict[str, Any]:
    """The same task, seed and epochs with the no-seed policy, without telemetry."""
    if BASELINE_POLICY not in catalog.policies:
        raise ConfigError("the baseline comparison needs the 'noop' policy (install esper-policies) "
                          "or run with --no-compare-baseline")
    policy = make_policy(resolved, BASELINE_POLICY, catalog, slot_names, {})
    result = run_episode(resolved, task, policy, episode=0, emit=lambda event: None,
                         policy_name=BASELINE_POLICY)
    return {
        "policy": BASELINE_POLICY,
        "final_accuracy": result.final_accuracy,
        "best_accuracy": result.best_accuracy,
        "host_params": result.host_params,
        "seed_params": result.fossilized_params,
        "wall_seconds": round(result.seconds, 3),
    }


def _summary(resolved: ResolvedRun, run_id: str, device: str, results: list[EpisodeResult]) -> dict[str, Any]:
    last = results[-1]
    summary: dict[str, Any] = {
        "run_id": run_id,
        "task": resolved.task.name,
        "policy": resolved.policy.name,
        "seed": resolved.config.seed,
        "device": device,
        "epochs": resolved.epochs,
        "episodes": len(results),
        **{k: v for k, v in last.to_dict().items() if k not in {"episode", "policy", "epochs", "wall_seconds"}},
    }
    if len(results) > 1:
        summary["per_episode"] = [r.to_dict() for r in results]
    return summary
