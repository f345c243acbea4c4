"""What a report shows, extracted from a run's recorded events.

A run with a learned policy has many episodes; curves show one episode (the last by default)
and the PPO figures and per-episode accuracy cover the whole run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import field, frozen

from esper_core.contracts.events import (
    EpochEnded,
    GovernorRollback,
    GradientHealth,
    PPOUpdate,
    RewardComputed,
    RunStarted,
    SeedLifecycle,
    TelemetryEvent,
)
from esper_core.errors import EsperError
from esper_telemetry.queries import not_a_run_dir
from esper_telemetry.records import (
    DATABASE_FILE,
    EVENTS_FILE,
    event_or_none,
    iter_event_records,
    read_summary,
)


@frozen(kw_only=True)
class SlotPoint:
    epoch: int
    stage: str
    blueprint: str | None
    alpha: float | None
    #: Dependence: accuracy lost when the seed is removed (measured from BLENDING on).
    contribution: float | None
    #: Gain over the no-seed path, measured in TRAINING; standard errors in points.
    seed_gain: float | None = None
    contribution_se: float | None = None
    seed_gain_se: float | None = None


@frozen(kw_only=True)
class SeedTrace:
    """One seed's life in one slot: the epochs it existed, with α and its two measures."""

    slot: str
    blueprint: str
    points: tuple[SlotPoint, ...]

    @property
    def label(self) -> str:
        first, last = self.points[0].epoch, self.points[-1].epoch
        return f"{self.slot}: {self.blueprint} (epochs {first}–{last})"


@frozen(kw_only=True)
class RunHistory:
    run_id: str
    task: str | None
    policy: str | None
    episode: int
    episodes: tuple[int, ...]
    epochs: tuple[EpochEnded, ...]
    lifecycle: tuple[SeedLifecycle, ...]
    rollbacks: tuple[GovernorRollback, ...]
    rewards: tuple[RewardComputed, ...]
    ppo: tuple[PPOUpdate, ...]
    #: (episode, final validation accuracy) for every episode of the run.
    episode_accuracy: tuple[tuple[int, float], ...]
    summary: Mapping[str, Any] = field(factory=dict)
    #: The episode's gradient-health reports (``gradient_health`` observer), by epoch.
    gradients: tuple[GradientHealth, ...] = ()

    @property
    def slot_names(self) -> list[str]:
        """Slots in order of first appearance (epoch reports, then lifecycle events)."""
        names: dict[str, None] = {}
        for event in self.epochs:
            for slot in event.slots:
                names.setdefault(str(slot.get("slot")), None)
        for transition in self.lifecycle:
            names.setdefault(transition.slot, None)
        return list(names)

    def slot_points(self, slot: str) -> list[SlotPoint]:
        points = []
        for event in self.epochs:
            for entry in event.slots:
                if str(entry.get("slot")) == slot:
                    points.append(SlotPoint(
                        epoch=event.epoch,
                        stage=_stage_name(entry.get("stage", "UNKNOWN")),
                        blueprint=entry.get("blueprint"),
                        alpha=entry.get("alpha"),
                        contribution=entry.get("contribution"),
                        seed_gain=entry.get("seed_gain"),
                        contribution_se=entry.get("contribution_se"),
                        seed_gain_se=entry.get("seed_gain_se"),
                    ))
        return points

    def seed_traces(self) -> list[SeedTrace]:
        """Seeds as contiguous spans of epochs in which a slot holds the same blueprint."""
        traces: list[SeedTrace] = []
        for slot in self.slot_names:
            current: list[SlotPoint] = []
            for point in self.slot_points(slot):
                starts_new = current and (
                    point.blueprint != current[-1].blueprint or (point.stage == "GERMINATED"
                    and current[-1].stage != "GERMINATED")
                )
                if point.blueprint is None or point.stage in _NO_SEED or starts_new:
                    if current:
                        traces.append(_trace(slot, current))
                    current = []
                if point.blueprint is not None and point.stage not in _NO_SEED:
                    current.append(point)
            if current:
                traces.append(_trace(slot, current))
        return traces

    @property
    def reward_terms(self) -> list[str]:
        names: dict[str, None] = {}
        for event in self.rewards:
            for term in event.terms:
                names.setdefault(term, None)
        return list(names)


#: Stages in which a slot holds no seed module.
_NO_SEED = frozenset({"DORMANT", "UNKNOWN", "EMBARGOED", "RESETTING"})


def _trace(slot: str, points: Sequence[SlotPoint]) -> SeedTrace:
    return SeedTrace(slot=slot, blueprint=str(points[0].blueprint), points=tuple(points))


def _stage_name(value: Any) -> str:
    name = getattr(value, "name", None)
    return str(name if isinstance(name, str) else value).upper()


def load_events(run_dir: Path) -> list[TelemetryEvent]:
    """The run's events from ``events.jsonl``, else from the events table of ``run.sqlite``."""
    if not run_dir.is_dir():
        raise EsperError(not_a_run_dir(run_dir))
    jsonl = run_dir / EVENTS_FILE
    if jsonl.is_file():
        return list(iter_event_records(jsonl))
    database = run_dir / DATABASE_FILE
    if database.is_file():
        connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT record_json FROM events ORDER BY event_id").fetchall()
        except sqlite3.DatabaseError as exc:
            raise EsperError(f"{database} is not an esper run database ({exc})") from exc
        finally:
            connection.close()
        events = [event_or_none(row[0]) if isinstance(row[0], str | bytes) else None for row in rows]
        return [e for e in events if e is not None]
    raise EsperError(f"{run_dir} is not a run directory: it has neither {EVENTS_FILE} nor "
                     f"{DATABASE_FILE}")


def build_history(events: Sequence[TelemetryEvent], *, summary: Mapping[str, Any] | None = None,
                  episode: int | None = None, run_id: str = "") -> RunHistory:
    """Select one episode's curves (default: the last one with epochs) and the run-wide data."""
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    if not epochs:
        raise EsperError("the run recorded no epochs, so there is nothing to plot")
    episodes = tuple(sorted({e.episode for e in epochs}))
    chosen = episodes[-1] if episode is None else episode
    if chosen not in episodes:
        raise EsperError(f"episode {chosen} not in this run; episodes: "
                         f"{', '.join(map(str, episodes))}")
    started = next((e for e in events if isinstance(e, RunStarted)), None)
    last_accuracy: dict[int, float] = {}
    for event in epochs:
        last_accuracy[event.episode] = event.val_accuracy

    def of_episode(kind: type[TelemetryEvent]) -> tuple[Any, ...]:
        return tuple(e for e in events if isinstance(e, kind) and e.episode == chosen)

    return RunHistory(
        run_id=(started.run_id if started else "") or epochs[0].run_id or run_id,
        task=started.task if started else (summary or {}).get("task"),
        policy=started.policy if started else (summary or {}).get("policy"),
        episode=chosen,
        episodes=episodes,
        epochs=tuple(sorted(of_episode(EpochEnded), key=lambda e: e.epoch)),
        lifecycle=of_episode(SeedLifecycle),
        rollbacks=of_episode(GovernorRollback),
        rewards=of_episode(RewardComputed),
        ppo=tuple(sorted((e for e in events if isinstance(e, PPOUpdate)),
                         key=lambda e: e.update)),
        episode_accuracy=tuple(sorted(last_accuracy.items())),
        summary=dict(summary or {}),
        gradients=tuple(sorted(of_episode(GradientHealth), key=lambda e: e.epoch)),
    )


def load_history(run_dir: Path, *, episode: int | None = None) -> RunHistory:
    return build_history(load_events(run_dir), summary=read_summary(run_dir), episode=episode,
                         run_id=run_dir.name)
