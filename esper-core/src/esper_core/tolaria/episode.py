"""One episode: a host trained for E epochs while the controller grows it.

Each epoch: train host and live seeds; validate with counterfactual credit; report; build the
action mask; ask the policy; apply its decision; step every slot's lifecycle; compute the
reward terms; emit telemetry (DESIGN §5).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import structlog
import torch
from attrs import define, field, frozen

from esper_core.contracts.decisions import ActionMask, Decision, Op
from esper_core.contracts.events import (
    Anomaly,
    DecisionMade,
    EpochEnded,
    GovernorRollback,
    RewardComputed,
    SeedLifecycle,
    TelemetryEvent,
)
from esper_core.contracts.protocols import Policy, RewardContext, Stateful, Task
from esper_core.contracts.reports import EpochReport
from esper_core.contracts.specs import GateResult
from esper_core.kasmina import (
    MorphogeneticModel,
    SafetyGovernor,
    SeedTrainer,
    evaluate,
)
from esper_core.kasmina.counterfactual import measure
from esper_core.setup.resolve import ResolvedRun
from esper_core.setup.seeding import RngStream
from esper_core.setup.tasks import build_model
from esper_core.tolaria.ledger import SeedLedger, SeedRecord
from esper_core.tolaria.masks import build_action_mask

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
    #: accuracy of the final model on the task's held-out test split (None: the task has none)
    test_accuracy: float | None = None
    #: mean loss on the test split, and the task's metrics of it (``Task.loss_metrics``)
    test_loss: float | None = None
    test_metrics: dict[str, float] = field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "policy": self.policy,
            "epochs": self.epochs,
            "final_accuracy": self.final_accuracy,
            "best_accuracy": self.best_accuracy,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            **({"test_metrics": dict(self.test_metrics)} if self.test_metrics else {}),
            "host_params": self.host_params,
            "seed_params": self.fossilized_params,
            "seeds": [s.to_dict() for s in self.seeds],
            "total_reward": self.total_reward,
            "wall_seconds": self.seconds,
        }


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


@frozen(kw_only=True)
class EpisodeStep:
    """What an episode hands its controller: the report and mask to decide on, and the reward
    of the previous decision.

    After :meth:`HostEpisode.start`, ``reward`` is 0 and ``done`` False. After the last
    decision ``done`` is True and ``report`` is the report after that decision's lifecycle step
    (what a learned policy bootstraps its value from when the episode was cut short);
    ``truncated`` says the episode stopped at its length cap before the run's last epoch, so
    the end is a time limit, not a terminal state.
    """

    report: EpochReport
    mask: ActionMask
    reward: float = 0.0
    reward_terms: Mapping[str, float] = field(factory=dict)
    done: bool = False
    truncated: bool = False


class HostEpisode:
    """One episode as a stepwise environment: :meth:`start` trains epoch 1 and returns the first
    report; each :meth:`step` applies a decision, steps the lifecycle, computes the reward and
    (unless the episode is over) trains the next epoch.

    ``length`` caps the epochs actually trained (default: all of ``resolved.epochs``); the
    observation still measures time against ``resolved.epochs``. Every step runs on the
    episode's own :class:`RngStream` seeded with ``seed``, so episodes stepped side by side
    in one process do not share random numbers. Use as a context manager, or call
    :meth:`close` (observers hold hooks on the model).
    """

    def __init__(self, resolved: ResolvedRun, task: Task, *, episode: int, seed: int,
                 emit: Callable[[TelemetryEvent], None], policy_name: str,
                 length: int | None = None,
                 on_epoch_end: Callable[[HostEpisode], None] | None = None) -> None:
        if length is not None and not 1 <= length <= resolved.epochs:
            raise ValueError(f"episode length must be in 1..{resolved.epochs}, got {length}")
        self.resolved = resolved
        self.task = task
        self.episode = episode
        self.seed = seed
        self.policy_name = policy_name
        self.length = length or resolved.epochs
        self._emit_outer = emit
        #: Called after each decision's lifecycle step and reward, before the next epoch
        #: trains: the one point where the whole episode state can be checkpointed.
        self._on_epoch_end = on_epoch_end
        self._rng = RngStream(seed, deterministic=resolved.config.deterministic,
                              cuda=str(getattr(task, "device", "cpu")).startswith("cuda"))
        self._ledger = SeedLedger()
        self._transitions: list[tuple[str, str, str]] = []
        self._rollbacks = 0
        self._started = time.perf_counter()
        self._epoch = 0
        self._previous: EpochReport | None = None
        self._current: EpochReport | None = None
        self._current_mask: ActionMask | None = None
        self._gate_previews: list[GateResult | None] | None = None
        self._anomalies: list[tuple[str | None, str]] = []
        self._start_accuracy = 0.0
        self._best = float("-inf")
        self._curve: list[float] = []
        self._total_reward = 0.0
        self._done = False
        self._observers: list[Any] = []
        self._test: tuple[float | None, float | None] | None = None
        with self._rng.active():
            self.model = build_model(resolved, task, self._emit)
            self.trainer = SeedTrainer(
                self.model,
                host_lr=resolved.training.lr,
                seed_lr=resolved.training.seed_lr,
                weight_decay=resolved.training.weight_decay,
                optimizer=resolved.training.optimizer,
                governor=SafetyGovernor(self.model),
            )
            self._build_observers()

    def _build_observers(self) -> None:
        try:
            for spec in self.resolved.observers:
                options = self.resolved.config.observer_options.get(spec.name, {})
                self._observers.append(spec.factory(model=self.model, options=options))
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> HostEpisode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def done(self) -> bool:
        return self._done

    def _emit(self, event: TelemetryEvent) -> None:
        if isinstance(event, SeedLifecycle):
            self._ledger.on_transition(event)
            self._transitions.append((event.slot, event.from_stage, event.to_stage))
        elif isinstance(event, GovernorRollback):
            self._rollbacks += 1
        self._emit_outer(attrs.evolve(event, episode=self.episode))

    def _report(self, *, train_loss: float, val_loss: float, val_accuracy: float) -> EpochReport:
        counts = self.model.param_counts()
        return EpochReport(
            episode=self.episode,
            epoch=self._epoch,
            max_epochs=self.resolved.epochs,
            train_loss=train_loss,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            host_params=counts.host,
            seed_params=counts.fossilized + sum(counts.seeds.values()),
            slots=self.model.slot_reports(),
            rollbacks=self._rollbacks,
            max_seeds=self.resolved.max_seeds,
        )

    def _mask(self, report: EpochReport) -> ActionMask:
        lifecycle = self.resolved.lifecycle
        self._gate_previews = (self.model.preview_gates(epoch=report.epoch, advance=not lifecycle.auto_advance)
                               if lifecycle.mask_by_gates else None)
        return build_action_mask(
            report.slots, self.resolved.blueprints, max_seeds=self.resolved.max_seeds,
            param_budget=self.resolved.config.param_budget, seed_params_in_use=report.seed_params,
            auto_advance=lifecycle.auto_advance, gate_previews=self._gate_previews,
        )

    def _refusal(self, decision: Decision) -> str:
        """Why the mask refuses ``decision``, naming the gate where a gate is the reason."""
        refused = f"refused: {decision.describe()} is not allowed by the action mask"
        previews, slot = self._gate_previews, decision.slot
        if (previews is None or slot is None or not 0 <= slot < len(previews)
                or decision.op not in (Op.FOSSILIZE, Op.ADVANCE)):
            return refused
        preview = previews[slot]
        if preview is None or preview.passed:
            return refused
        return f"{refused}: the gate into {preview.target.name} would refuse it ({preview.reason})"

    def _train_epoch(self) -> EpochReport:
        """Train and validate the next epoch; run the observers; emit the epoch's event."""
        self._epoch += 1
        epoch = self._epoch
        epoch_started = time.perf_counter()
        self._rollbacks = 0
        self._transitions.clear()
        for group in self.trainer.host_optimizer.param_groups:
            group["lr"] = self.resolved.training.host_lr(epoch, self.resolved.epochs)
        stats = self.trainer.train_epoch(self.task.train_batches(epoch=epoch), self.task.loss, epoch=epoch)
        val = evaluate(self.model, self.task.val_batches(), self.task.loss, self.task.correct,
                       example_fn=getattr(self.task, "correct_per_example", None))
        report = self._report(train_loss=stats.loss, val_loss=val.loss, val_accuracy=val.accuracy)
        self._ledger.on_epoch(report.slots)
        self._anomalies = []
        for observer in self._observers:
            for event in observer.after_epoch(report=report):
                if isinstance(event, Anomaly):
                    self._anomalies.append((event.slot, event.signature))
                self._emit(attrs.evolve(event, epoch=epoch))
        if epoch == 1:
            self._start_accuracy = val.accuracy
        self._best = max(self._best, val.accuracy)
        self._curve.append(val.accuracy)
        self._emit(EpochEnded(
            epoch=epoch,
            train_loss=stats.loss,
            val_loss=val.loss,
            val_accuracy=val.accuracy,
            host_params=report.host_params,
            seed_params=report.seed_params,
            seconds=time.perf_counter() - epoch_started,
            val_metrics=self._loss_metrics(val.loss),
            slots=[
                {"slot": s.slot, "stage": s.stage.name, "blueprint": s.blueprint, "alpha": s.alpha,
                 "contribution": s.contribution, "seed_gain": s.seed_gain,
                 "contribution_se": s.contribution_se, "seed_gain_se": s.seed_gain_se,
                 "gradient_ratio": s.gradient_ratio, "seed_params": s.seed_params}
                for s in report.slots
            ],
        ))
        self._current = report
        self._current_mask = self._mask(report)
        return report

    def start(self) -> EpisodeStep:
        """Train epoch 1 and return its report and mask."""
        if self._epoch:
            raise RuntimeError("HostEpisode.start() was already called")
        logger.info("episode", episode=self.episode, policy=self.policy_name, epochs=self.length)
        with self._rng.active():
            report = self._train_epoch()
        assert self._current_mask is not None
        return EpisodeStep(report=report, mask=self._current_mask)

    def step(self, decision: Decision) -> EpisodeStep:
        """Apply ``decision`` to the epoch just reported; return its reward and the next report."""
        if self._done or self._current is None:
            raise RuntimeError("HostEpisode.step() needs start() first and an episode not yet over")
        with self._rng.active():
            reward, terms, final = self._step(decision)
        if self._on_epoch_end is not None:
            self._on_epoch_end(self)
        if final is not None:
            return final
        with self._rng.active():
            next_report = self._train_epoch()
        assert self._current_mask is not None
        return EpisodeStep(report=next_report, mask=self._current_mask, reward=reward, reward_terms=terms)

    def resume(self) -> EpisodeStep:
        """After :meth:`load_state_dict`: train the next epoch and return its report and mask."""
        if self._done or not self._epoch:
            raise RuntimeError("HostEpisode.resume() needs a restored episode that is not over")
        with self._rng.active():
            report = self._train_epoch()
        assert self._current_mask is not None
        return EpisodeStep(report=report, mask=self._current_mask)

    def _step(self, decision: Decision) -> tuple[float, dict[str, float], EpisodeStep | None]:
        """Apply ``decision``, step the lifecycle, compute the reward; the final step once over."""
        assert self._current is not None and self._current_mask is not None
        report, mask, epoch, resolved = self._current, self._current_mask, self._epoch, self.resolved
        if mask.allows(decision):
            applied, outcome = _apply(self.model, decision, resolved, epoch, report.val_accuracy)
        else:
            applied, outcome = False, self._refusal(decision)
            logger.warning("decision_masked", policy=self.policy_name, decision=decision.describe())
        names = self.model.slot_names
        self._emit(DecisionMade(
            epoch=epoch, policy=self.policy_name, op=decision.op.name,
            slot=None if decision.slot is None else names[decision.slot]
            if 0 <= decision.slot < len(names) else str(decision.slot),
            blueprint=decision.blueprint, reason=decision.reason, confidence=decision.confidence,
            applied=applied, outcome=outcome,
        ))
        self.model.step_lifecycle(epoch=epoch)
        after = self._report(train_loss=report.train_loss, val_loss=report.val_loss,
                             val_accuracy=report.val_accuracy)
        last = epoch == self.length
        reward = resolved.reward(RewardContext(
            report=after, previous=self._previous, decision=decision, decision_applied=applied,
            transitions=tuple(self._transitions), rollbacks=self._rollbacks, anomalies=self._anomalies,
            terminal=epoch == resolved.epochs, start_accuracy=self._start_accuracy,
        ))
        self._total_reward += reward.total
        self._emit(RewardComputed(epoch=epoch, total=reward.total, terms=dict(reward.terms)))
        self._previous = after
        logger.info(
            "epoch",
            episode=self.episode,
            epoch=f"{epoch}/{self.length}",
            policy=self.policy_name,
            val_accuracy=round(report.val_accuracy, 2),
            train_loss=round(report.train_loss, 4),
            decision=decision.describe(),
            applied=applied,
            slots=" ".join(f"{s.slot}={s.stage.name}" for s in after.slots),
        )
        if last:
            self._done = True
            self._ledger.on_epoch(self.model.slot_reports())
            return reward.total, dict(reward.terms), EpisodeStep(
                report=after, mask=self._mask(after), reward=reward.total,
                reward_terms=dict(reward.terms), done=True, truncated=epoch < resolved.epochs)
        return reward.total, dict(reward.terms), None

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this episode exactly, between two epochs (from
        ``on_epoch_end``): weights, optimizer states and a ``python`` entry of picklable
        bookkeeping (architecture, RNG streams, ledger, counters, observers' state)."""
        from esper_core.storage.run_checkpoint import architecture_state

        observers = [o.state_dict() if isinstance(o, Stateful) else None for o in self._observers]
        return {
            "model": self.model.state_dict(),
            "optimizers": self.trainer.state_dict(),
            "python": {
                "episode": self.episode,
                "epoch": self._epoch,
                "done": self._done,
                "architecture": architecture_state(self.model),
                "rng": self._rng.state(),
                "ledger": self._ledger,
                "previous": self._previous,
                "start_accuracy": self._start_accuracy,
                "best": self._best,
                "curve": list(self._curve),
                "total_reward": self._total_reward,
                "elapsed": time.perf_counter() - self._started,
                "rollback_count": self.trainer.governor.rollback_count if self.trainer.governor else 0,
                "observers": observers,
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of the same run: the architecture is rebuilt
        from the recorded lifecycle first, then weights and optimizer states are loaded."""
        from esper_core.storage.run_checkpoint import rebuild_architecture

        py = state["python"]
        with self._rng.active():  # blueprint factories draw initial weights; they are overwritten
            rebuild_architecture(self.model, py["architecture"], self.resolved.blueprints)
        self.model.load_state_dict(state["model"])
        self.trainer.load_state_dict(state["optimizers"])
        if self.trainer.governor is not None:
            self.trainer.governor.rollback_count = py["rollback_count"]
        self._rng.set_state(py["rng"])
        self._epoch = py["epoch"]
        self._done = py["done"]
        self._ledger = py["ledger"]
        self._previous = py["previous"]
        self._start_accuracy = py["start_accuracy"]
        self._best = py["best"]
        self._curve = list(py["curve"])
        self._total_reward = py["total_reward"]
        self._started = time.perf_counter() - py["elapsed"]
        # Observers watch the model's parameters: rebuild them on the restored architecture
        # (outside the stream, which is already at the checkpoint's state).
        self.close()
        self._build_observers()
        for observer, saved in zip(self._observers, py["observers"], strict=True):
            if saved is not None and isinstance(observer, Stateful):
                observer.load_state_dict(saved)

    def random_stream(self) -> Any:
        """A context manager running its block on this episode's random stream (e.g. to build
        modules whose initial weights must not depend on what else runs in the process)."""
        return self._rng.active()

    def test_accuracy(self) -> float | None:
        """The model's accuracy on the task's held-out test split, which no controller or gate
        sees (None when the task has no ``test_batches``)."""
        measured = self._measure_test()
        return None if measured is None else measured[0]

    def _measure_test(self) -> tuple[float, float | None] | None:
        """Accuracy and mean loss on the test split (None without one)."""
        batches = getattr(self.task, "test_batches", None)
        if batches is None:
            return None
        return measure(self.model, batches(), self.task.correct, self.task.loss)

    def _loss_metrics(self, loss: float | None) -> dict[str, float]:
        """The task's named metrics of a mean loss (``Task.loss_metrics``), as it gives them."""
        derive = getattr(self.task, "loss_metrics", None)
        return {} if derive is None or loss is None else dict(derive(loss))

    def result(self) -> EpisodeResult:
        """The finished episode's outcome, with its held-out test accuracy."""
        if not self._done:
            raise RuntimeError("HostEpisode.result() is only available once the episode is over")
        if self._test is None:
            self._test = self._measure_test() or (None, None)
        test_accuracy, test_loss = self._test
        counts = self.model.param_counts()
        return EpisodeResult(
            episode=self.episode,
            policy=self.policy_name,
            epochs=self.length,
            final_accuracy=self._curve[-1],
            best_accuracy=self._best,
            host_params=counts.host,
            fossilized_params=counts.fossilized,
            seeds=list(self._ledger.records),
            total_reward=self._total_reward,
            seconds=time.perf_counter() - self._started,
            model=self.model,
            test_accuracy=test_accuracy,
            test_loss=test_loss,
            test_metrics=self._loss_metrics(test_loss),
        )

    def close(self) -> None:
        """Release the observers (idempotent)."""
        observers, self._observers = self._observers, []
        for observer in observers:
            observer.close()


def run_episode(
    resolved: ResolvedRun,
    task: Task,
    policy: Policy,
    *,
    episode: int,
    emit: Callable[[TelemetryEvent], None],
    policy_name: str,
    seed: int | None = None,
) -> EpisodeResult:
    """Train one host for ``resolved.epochs`` epochs under ``policy`` (seed: run seed + episode)."""
    seed = resolved.config.seed + episode if seed is None else seed
    with HostEpisode(resolved, task, episode=episode, seed=seed, emit=emit, policy_name=policy_name) as env:
        policy.reset(episode=episode)
        step = env.start()
        while not step.done:
            step = env.step(policy.decide(report=step.report, mask=step.mask))
        return env.result()


def save_model(result: EpisodeResult, path: Any, *, task: str,
               blueprint_keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Save the final model: weights plus the architecture needed to rebuild it (returned)."""
    architecture = [
        {"slot": s.slot, "stage": s.stage.name, "blueprint": s.blueprint, "alpha": s.alpha}
        for s in result.model.slot_reports()
    ]
    torch.save(
        {
            "task": task,
            "blueprint_catalog": list(blueprint_keys),
            "architecture": architecture,
            "state_dict": result.model.state_dict(),
        },
        path,
    )
    return architecture
