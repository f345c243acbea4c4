"""The ``console`` sink: what a person watching a run wants to read, one short line at a time.

Lines go through :func:`click.echo` to stderr by default (stdout stays free for a command's
real output); click strips the colours when the stream is not a terminal. One line per epoch,
per lifecycle transition, gate result, decision, governor rollback, anomaly, PPO update and the
run's start and end. WAIT decisions are hidden by default because they arrive every epoch, and
so are gradient-health reports unless the gradients look unhealthy (score below
:data:`UNHEALTHY_BELOW` or a non-finite step).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from attrs import field, frozen

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
from esper_core.options import is_bool, one_of, parse_options

#: A gradient-health score below this (or any non-finite step) is worth a console line.
UNHEALTHY_BELOW = 0.9


@frozen(kw_only=True)
class ConsoleOptions:
    #: "stderr" (default) or "stdout".
    stream: str = field(default="stderr", validator=one_of("stderr", "stdout"))
    #: Which decisions to print: "actions" (all but WAIT), "all" or "none".
    decisions: str = field(default="actions",
                           validator=one_of("actions", "all", "none"))
    #: Which gate results to print: "all", "passed", "failed" or "none".
    gates: str = field(default="all",
                       validator=one_of("all", "passed", "failed", "none"))
    #: Print the reward of every controller step.
    rewards: bool = field(default=False, validator=is_bool)
    #: Which gradient-health reports to print: "unhealthy" (score < 0.9 or a non-finite
    #: step), "all" or "none".
    gradients: str = field(default="unhealthy",
                           validator=one_of("unhealthy", "all", "none"))


def _count(n: int | float | None) -> str:
    """12345 → '12.3k': parameter counts at a glance."""
    if n is None:
        return "-"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(int(n))


def _num(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _number(value: Any) -> float | None:
    """A summary figure, or None when it is missing or not a number (never a bool)."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _stage(value: Any) -> str:
    name = getattr(value, "name", None)
    return str(name if isinstance(name, str) else value)


class ConsoleSink:
    """Formats events as short human-readable lines."""

    name = "console"

    def __init__(self, options: ConsoleOptions | None = None) -> None:
        self.options = options or ConsoleOptions()
        self._err = self.options.stream == "stderr"
        self._formatters: dict[type[TelemetryEvent], Callable[[Any], str | None]] = {
            RunStarted: self._run_started,
            EpochEnded: self._epoch,
            SeedLifecycle: self._lifecycle,
            GateEvaluated: self._gate,
            DecisionMade: self._decision,
            RewardComputed: self._reward,
            GovernorRollback: self._rollback,
            Anomaly: self._anomaly,
            GradientHealth: self._gradients,
            PPOUpdate: self._ppo,
            RunEnded: self._run_ended,
        }

    @classmethod
    def from_options(cls, *, run_dir: Path | None, options: Mapping[str, Any]) -> ConsoleSink:
        return cls(parse_options(ConsoleOptions, options, owner="telemetry sink 'console'"))

    def format(self, event: TelemetryEvent) -> str | None:
        """The line for ``event``, or None when this sink does not show it."""
        formatter = self._formatters.get(type(event))
        return formatter(event) if formatter is not None else None

    def emit(self, event: TelemetryEvent) -> None:
        line = self.format(event)
        if line is not None:
            click.echo(line, err=self._err)

    def flush(self) -> None:
        """Lines are written as they come; nothing is buffered."""

    def close(self) -> None:
        """Nothing to release: the stream belongs to the process."""

    @staticmethod
    def _where(event: TelemetryEvent) -> str:
        return f"ep {event.episode} e{event.epoch:>3}"

    def _run_started(self, event: RunStarted) -> str:
        return click.style(f"run {event.run_id}: task={event.task} policy={event.policy} "
                           f"seed={event.seed}", bold=True)

    def _epoch(self, event: EpochEnded) -> str:
        slots = " ".join(
            f"{s.get('slot')}:{_stage(s.get('stage'))}"
            + (f"({s.get('blueprint')} α={_num(s.get('alpha'), '.2f')})"
               if s.get("blueprint") else "")
            for s in event.slots
            if _stage(s.get("stage")) not in ("DORMANT", "UNKNOWN")
        )
        return (f"{self._where(event)}  loss {_num(event.train_loss)}/{_num(event.val_loss)}  "
                f"acc {_num(event.val_accuracy, '.2f')}%  params {_count(event.host_params)}"
                f"+{_count(event.seed_params)}  {_num(event.seconds, '.1f')}s"
                + (f"  {slots}" if slots else ""))

    def _lifecycle(self, event: SeedLifecycle) -> str:
        to_stage = _stage(event.to_stage)
        colour = {"FOSSILIZED": "green", "CULLED": "red", "GERMINATED": "cyan"}.get(to_stage)
        reason = f"  ({event.reason})" if event.reason else ""
        text = (f"{self._where(event)}  seed {event.slot} {event.blueprint or ''}: "
                f"{_stage(event.from_stage)} → {to_stage}{reason}")
        return click.style(text, fg=colour)

    def _gate(self, event: GateEvaluated) -> str | None:
        show = self.options.gates
        if show == "none" or (show == "passed" and not event.passed) or (
            show == "failed" and event.passed
        ):
            return None
        verdict = "pass" if event.passed else "fail"
        return (f"{self._where(event)}  gate {event.gate} {event.slot} → {_stage(event.target)}: "
                f"{verdict} ({event.reason})")

    def _decision(self, event: DecisionMade) -> str | None:
        show = self.options.decisions
        if show == "none" or (show == "actions" and event.op.upper() == "WAIT"):
            return None
        target = " ".join(x for x in (event.slot, event.blueprint) if x)
        applied = "" if event.applied else " [not applied]"
        return (f"{self._where(event)}  {event.policy}: {event.op} {target} "
                f"(p={event.confidence:.2f}: {event.reason}){applied}")

    def _reward(self, event: RewardComputed) -> str | None:
        if not self.options.rewards:
            return None
        terms = " ".join(f"{k}={v:+.3f}" for k, v in event.terms.items())
        return f"{self._where(event)}  reward {event.total:+.3f}  {terms}"

    def _rollback(self, event: GovernorRollback) -> str:
        return click.style(f"{self._where(event)}  ROLLBACK {event.slot or 'host'} at step "
                           f"{event.step}: {event.cause}", fg="red", bold=True)

    def _anomaly(self, event: Anomaly) -> str:
        value = f" = {event.value:.4g}" if event.value is not None else ""
        return click.style(f"{self._where(event)}  anomaly {event.signature} "
                           f"{event.slot or ''}{value} {event.detail}".rstrip(), fg="yellow")

    def _gradients(self, event: GradientHealth) -> str | None:
        show = self.options.gradients
        unhealthy = event.nonfinite_steps > 0 or (
            event.score is not None and event.score < UNHEALTHY_BELOW)
        if show == "none" or (show == "unhealthy" and not unhealthy):
            return None
        parts = [f"score {_num(event.score, '.2f')}",
                 f"norm {_num(event.global_norm_mean, '.3g')} (max {_num(event.global_norm_max, '.3g')})"]
        if event.vanishing_fraction:
            parts.append(f"vanishing {event.vanishing_fraction:.0%}")
        if event.exploding_fraction:
            parts.append(f"exploding {event.exploding_fraction:.0%}")
        if event.nonfinite_steps:
            parts.append(f"{event.nonfinite_steps} non-finite step(s)")
        worst = sorted((layer for layer in event.layers if layer.get("score") is not None),
                       key=lambda layer: layer["score"])[:3]
        if unhealthy and worst:
            parts.append("worst: " + ", ".join(f"{layer.get('name')} {layer['score']:.2f}"
                                               for layer in worst))
        text = f"{self._where(event)}  gradients{' UNHEALTHY' if unhealthy else ''}: " + "  ".join(parts)
        return click.style(text, fg="yellow") if unhealthy else text

    def _ppo(self, event: PPOUpdate) -> str:
        metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(event.metrics.items())[:6])
        return f"ppo update {event.update}  {metrics}"

    def _run_ended(self, event: RunEnded) -> str:
        s = event.summary
        # The held-out test figure leads when the task has one; the validation figures are
        # what the controller optimised, so they are labelled val.
        test = _number(s.get("test_accuracy"))
        baseline = s.get("baseline")
        base_test = _number(baseline.get("test_accuracy")) if isinstance(baseline, Mapping) else None
        headline = ""
        if test is not None:
            headline = f"test {test:.2f}%"
            if base_test is not None:
                headline += f" (baseline {base_test:.2f}%, {test - base_test:+.2f})"
            headline += "  "
        return click.style(
            f"run {event.run_id} done: {headline}"
            f"val final {_num(_number(s.get('final_accuracy')), '.2f')}%  "
            f"best {_num(_number(s.get('best_accuracy')), '.2f')}%  "
            f"{_num(_number(s.get('wall_seconds')), '.1f')}s", bold=True)
