"""One episode: a host trained for E epochs while the controller grows it.

Each epoch: train host and live seeds; validate with counterfactual credit; report; build the
action mask; ask the policy; apply its decision; step every slot's lifecycle; compute the
reward terms; emit telemetry (DESIGN §5).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
import structlog
import torch
from attrs import define, field

from esper_core.contracts.decisions import Decision, Op
from esper_core.contracts.events import (
    Anomaly,
    DecisionMade,
    EpochEnded,
    GovernorRollback,
    RewardComputed,
    SeedLifecycle,
    TelemetryEvent,
)
from esper_core.contracts.protocols import Policy, RewardContext, Task
from esper_core.contracts.reports import EpochReport
from esper_core.kasmina import GateSuite, MorphogeneticModel, SafetyGovernor, SeedTrainer, evaluate
from esper_core.tolaria.ledger import SeedLedger, SeedRecord
from esper_core.tolaria.masks import build_action_mask
from esper_core.tolaria.resolve import ResolvedRun

logger = structlog.get_logger(__name__)


@define
class EpisodeResult:
    episode: int
    policy: str
    epochs: int
    final_accuracy: float
    best_accuracy: float
    host_params: int
    fossilized_params: int
    seeds: list[SeedRecord]
    total_reward: float
    seconds: float
    model: MorphogeneticModel = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "policy": self.policy,
            "epochs": self.epochs,
            "final_accuracy": self.final_accuracy,
            "best_accuracy": self.best_accuracy,
            "host_params": self.host_params,
            "seed_params": self.fossilized_params,
            "seeds": [s.to_dict() for s in self.seeds],
            "total_reward": self.total_reward,
            "wall_seconds": self.seconds,
        }


def build_model(resolved: ResolvedRun, task: Task, emit: Callable[[TelemetryEvent], None]) -> MorphogeneticModel:
    """Wrap a fresh host from ``task`` with the run's slots, gates and lifecycle."""
    return MorphogeneticModel(
        task.build_host(),
        slots=resolved.slots,
        topology=resolved.task.topology,
        lifecycle=resolved.lifecycle,
        thresholds=resolved.thresholds,
        gates=GateSuite.from_specs(resolved.gate_specs, resolved.task.topology),
        alpha_schedules=resolved.alpha_schedules,
        param_budget=resolved.config.param_budget,
        emit=emit,
    )


def _apply(model: MorphogeneticModel, decision: Decision, resolved: ResolvedRun, epoch: int,
           accuracy: float) -> tuple[bool, str]:
    """Carry out ``decision``; return whether it took effect and what happened."""
    if decision.op is Op.WAIT:
        return True, "waited"
    assert decision.slot is not None  # guaranteed by Decision's validation
    slot = model.slot_names[decision.slot]
    if decision.op is Op.GERMINATE:
        spec = next(b for b in resolved.blueprints if b.key == decision.blueprint)
        result = model.germinate(slot, spec, epoch=epoch, accuracy=accuracy)
    elif decision.op is Op.ADVANCE:
        result = model.advance(slot, epoch=epoch)
    elif decision.op is Op.FOSSILIZE:
        result = model.fossilize(slot, epoch=epoch)
    else:
        model.cull(slot, epoch=epoch, reason=decision.reason or "controller decision")
        return True, "culled"
    return result.passed, result.reason


def _report(model: MorphogeneticModel, resolved: ResolvedRun, *, episode: int, epoch: int,
            train_loss: float, val_loss: float, val_accuracy: float, rollbacks: int) -> EpochReport:
    counts = model.param_counts()
    return EpochReport(
        episode=episode,
        epoch=epoch,
        max_epochs=resolved.epochs,
        train_loss=train_loss,
        val_loss=val_loss,
        val_accuracy=val_accuracy,
        host_params=counts.host,
        seed_params=counts.fossilized + sum(counts.seeds.values()),
        slots=model.slot_reports(),
        rollbacks=rollbacks,
        max_seeds=resolved.config.max_seeds,
    )


def run_episode(
    resolved: ResolvedRun,
    task: Task,
    policy: Policy,
    *,
    episode: int,
    emit: Callable[[TelemetryEvent], None],
    policy_name: str,
) -> EpisodeResult:
    """Train one host for ``resolved.epochs`` epochs under ``policy``."""
    started = time.perf_counter()
    ledger = SeedLedger()
    step_transitions: list[tuple[str, str, str]] = []
    rollbacks_this_epoch = 0

    def episode_emit(event: TelemetryEvent) -> None:
        nonlocal rollbacks_this_epoch
        if isinstance(event, SeedLifecycle):
            ledger.on_transition(event)
            step_transitions.append((event.slot, event.from_stage, event.to_stage))
        elif isinstance(event, GovernorRollback):
            rollbacks_this_epoch += 1
        emit(event)

    model = build_model(resolved, task, episode_emit)
    trainer = SeedTrainer(
        model,
        host_lr=resolved.training.lr,
        seed_lr=resolved.training.seed_lr,
        weight_decay=resolved.training.weight_decay,
        optimizer=resolved.training.optimizer,
        governor=SafetyGovernor(model),
    )
    observers = [spec.factory(model=model, options=resolved.config.observer_options.get(spec.name, {}))
                 for spec in resolved.observers]
    try:
        policy.reset(episode=episode)
        previous: EpochReport | None = None
        start_accuracy = 0.0
        best = float("-inf")
        total_reward = 0.0
        curve: list[float] = []
        for epoch in range(1, resolved.epochs + 1):
            epoch_started = time.perf_counter()
            rollbacks_this_epoch = 0
            step_transitions.clear()
            for group in trainer.host_optimizer.param_groups:
                group["lr"] = resolved.training.host_lr(epoch, resolved.epochs)
            stats = trainer.train_epoch(task.train_batches(epoch=epoch), task.loss, epoch=epoch)
            val = evaluate(model, task.val_batches(), task.loss, task.correct)
            report = _report(model, resolved, episode=episode, epoch=epoch, train_loss=stats.loss,
                             val_loss=val.loss, val_accuracy=val.accuracy, rollbacks=rollbacks_this_epoch)
            slots = report.slots
            ledger.on_epoch(slots)
            anomalies: list[tuple[str | None, str]] = []
            for observer in observers:
                for event in observer.after_epoch(report=report):
                    if isinstance(event, Anomaly):
                        anomalies.append((event.slot, event.signature))
                    emit(attrs.evolve(event, epoch=epoch))
            if epoch == 1:
                start_accuracy = val.accuracy
            best = max(best, val.accuracy)
            curve.append(val.accuracy)
            emit(EpochEnded(
                epoch=epoch,
                train_loss=stats.loss,
                val_loss=val.loss,
                val_accuracy=val.accuracy,
                host_params=report.host_params,
                seed_params=report.seed_params,
                seconds=time.perf_counter() - epoch_started,
                slots=[
                    {"slot": s.slot, "stage": s.stage.name, "blueprint": s.blueprint, "alpha": s.alpha,
                     "contribution": s.contribution, "seed_gain": s.seed_gain,
                     "gradient_ratio": s.gradient_ratio, "seed_params": s.seed_params}
                    for s in slots
                ],
            ))
            mask = build_action_mask(
                slots, resolved.blueprints, max_seeds=resolved.config.max_seeds,
                param_budget=resolved.config.param_budget, seed_params_in_use=report.seed_params,
                auto_advance=resolved.lifecycle.auto_advance,
            )
            decision = policy.decide(report=report, mask=mask)
            if mask.allows(decision):
                applied, outcome = _apply(model, decision, resolved, epoch, val.accuracy)
            else:
                applied, outcome = False, f"refused: {decision.describe()} is not allowed by the action mask"
                logger.warning("decision_masked", policy=policy_name, decision=decision.describe())
            emit(DecisionMade(
                epoch=epoch, policy=policy_name, op=decision.op.name,
                slot=None if decision.slot is None else model.slot_names[decision.slot]
                if 0 <= decision.slot < len(model.slot_names) else str(decision.slot),
                blueprint=decision.blueprint, reason=decision.reason, confidence=decision.confidence,
                applied=applied, outcome=outcome,
            ))
            model.step_lifecycle(epoch=epoch)
            after_report = _report(model, resolved, episode=episode, epoch=epoch, train_loss=stats.loss,
                                   val_loss=val.loss, val_accuracy=val.accuracy,
                                   rollbacks=rollbacks_this_epoch)
            reward = resolved.reward(RewardContext(
                report=after_report, previous=previous, decision=decision, decision_applied=applied,
                transitions=tuple(step_transitions), rollbacks=rollbacks_this_epoch, anomalies=anomalies,
                terminal=epoch == resolved.epochs, start_accuracy=start_accuracy,
            ))
            total_reward += reward.total
            emit(RewardComputed(epoch=epoch, total=reward.total, terms=dict(reward.terms)))
            previous = after_report
            logger.info(
                "epoch",
                episode=episode,
                epoch=f"{epoch}/{resolved.epochs}",
                policy=policy_name,
                val_accuracy=round(val.accuracy, 2),
                train_loss=round(stats.loss, 4),
                decision=decision.describe(),
                applied=applied,
                slots=" ".join(f"{s.slot}={s.stage.name}" for s in after_report.slots),
            )
        counts = model.param_counts()
        ledger.on_epoch(model.slot_reports())
        return EpisodeResult(
            episode=episode,
            policy=policy_name,
            epochs=resolved.epochs,
            final_accuracy=curve[-1],
            best_accuracy=best,
            host_params=counts.host,
            fossilized_params=counts.fossilized,
            seeds=list(ledger.records),
            total_reward=total_reward,
            seconds=time.perf_counter() - started,
            model=model,
        )
    finally:
        for observer in observers:
            observer.close()


def save_model(result: EpisodeResult, path: Any, *, task: str, blueprint_keys: tuple[str, ...]) -> None:
    """Save the final model: weights plus the architecture needed to rebuild it."""
    torch.save(
        {
            "task": task,
            "blueprint_catalog": list(blueprint_keys),
            "architecture": [
                {"slot": s.slot, "stage": s.stage.name, "blueprint": s.blueprint}
                for s in result.model.slot_reports()
            ],
            "state_dict": result.model.state_dict(),
        },
        path,
    )
