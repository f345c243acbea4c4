"""Progress of long work on a terminal: one compact line per unit of work, with counts and ETA.

``esper evaluate``, ``esper discover``, ``esper collect`` and PPO training run for minutes with
one unit of work after another (an episode, a batch of candidates, a round). On a terminal each
finished unit prints one line to stderr::

    evaluate   3/12 episodes  heuristic 61.25%  1m05s elapsed, ETA 3m15s

Nothing is printed when stderr is not a terminal or the logs are JSON lines (``--log-format
json``): a pipe or a log collector gets the structured records only, never progress text.
Lines, not a redrawn bar: the work logs its own lines (epochs, decisions) between units, which
would break a bar drawn in place.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

import click

from esper_core.log_config import format_duration


def console_logging() -> bool:
    """Whether log records are rendered for a person (``--log-format console``, or ``auto`` on a
    terminal) rather than as JSON lines."""
    import structlog

    from esper_core.log_config import CompactConsoleRenderer

    processors = structlog.get_config().get("processors") or [None]
    return isinstance(processors[-1], CompactConsoleRenderer)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class Progress:
    """Counts ``total`` units of work named ``unit`` under ``label`` and, when ``enabled``,
    prints a line per :meth:`step`. ``enabled`` defaults to: ``stream`` (stderr) is a terminal
    and the logs are rendered for a person. ``done`` counts units finished before (a resumed
    run): they are in the counts but not in the rate the ETA is estimated from."""

    def __init__(self, label: str, total: int, unit: str, *, done: int = 0, stream: TextIO | None = None,
                 enabled: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.unit = label, max(0, total), unit
        self.done = self._first = done
        self._stream = stream
        self.enabled = (_is_terminal(stream or sys.stderr) and console_logging()) if enabled is None else enabled
        self._clock = clock
        self._started = clock()

    def eta(self) -> float | None:
        """Seconds left at the rate of the units done so far (None before the first, and when done)."""
        measured = self.done - self._first
        if measured <= 0 or self.done >= self.total:
            return None
        return (self._clock() - self._started) / measured * (self.total - self.done)

    def status(self) -> str:
        """``3/12 episodes  1m05s elapsed, ETA 3m15s``; empty when not enabled."""
        if not self.enabled:
            return ""
        elapsed = format_duration(self._clock() - self._started)
        eta = self.eta()
        timing = f"{elapsed} elapsed" + (f", ETA {format_duration(eta)}" if eta is not None else "")
        return f"{self.done}/{self.total} {self.unit}  {timing}"

    def advance(self, n: int = 1) -> None:
        """Count ``n`` finished units without printing (for a command that prints its own line
        per unit and adds :meth:`status` to it)."""
        self.done = min(self.total, self.done + n) if self.total else self.done + n

    def step(self, note: str = "", n: int = 1) -> None:
        """Count ``n`` finished units and print the line (``note``: what the unit gave)."""
        self.advance(n)
        if self.enabled:
            count, _, timing = self.status().partition("  ")
            click.echo(f"{self.label}  {count}" + (f"  {note}" if note else "") + f"  {timing}",
                       file=self._stream or sys.stderr)


#: What long work reports after each unit: (units done, units in all, a short note). Called once
#: with ``done = 0`` before the first unit, so the clock starts with the work.
OnProgress = Callable[[int, int, str], None]


def progress_callback(label: str, unit: str, **kwargs: object) -> OnProgress:
    """An :data:`OnProgress` for work in a lower layer (which cannot import this module): its
    first call starts a :class:`Progress` of the total it gives, later calls step it."""
    state: list[Progress] = []

    def on_progress(done: int, total: int, note: str) -> None:
        if not state:
            state.append(Progress(label, total, unit, done=done, **kwargs))  # type: ignore[arg-type]
            return
        state[0].total = total
        state[0].step(note, n=done - state[0].done)

    return on_progress
