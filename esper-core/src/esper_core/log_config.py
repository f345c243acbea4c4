"""structlog configuration — done once, by the CLI.

Readable console output on a terminal, JSON lines otherwise (or as forced by
``--log-format``). Library code only ever calls ``structlog.get_logger(__name__)``, except the
modules ``esper --help`` imports, which use :func:`deferred_logger`: importing structlog (and
the asyncio it imports) took 0.1 s of that command's 0.4 s on the 2-core CPU machine.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Literal

LogFormat = Literal["auto", "console", "json"]
LEVELS = ("debug", "info", "warning", "error")


def configure_logging(level: str = "info", fmt: LogFormat = "auto") -> None:
    """Configure structlog to write to stderr at ``level`` in ``fmt``."""
    import structlog

    stream = sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: structlog.typing.Processor = (
        CompactConsoleRenderer(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
        if use_console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: short enough for a progress line."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# Short stage names for the per-epoch console line; a stage not listed keeps its full name.
_SHORT_STAGE = {"DORMANT": "DORM", "GERMINATED": "GERM", "TRAINING": "TRAIN", "BLENDING": "BLEND",
                "SHADOWING": "SHADOW", "PROBATIONARY": "PROB", "FOSSILIZED": "FOSSIL", "EMBARGOED": "EMBARGO",
                "RESETTING": "RESET"}


class CompactConsoleRenderer:
    """Console rendering that keeps ``esper run`` readable on a terminal.

    The ``epoch`` and ``seed transition`` records carry every field for the JSON log that other
    tools read; rendered in full they run to ~250 characters an epoch. Here an epoch becomes one
    short line, and the transitions logged while that epoch was being stepped (they come before
    its ``epoch`` record) are held back and printed indented under it. Every other event is
    rendered by ``inner`` (a ``structlog.dev.ConsoleRenderer``) as before.
    """

    def __init__(self, inner: Callable[..., Any], clock: Callable[[], float] = time.monotonic) -> None:
        self._inner = inner
        self._clock = clock
        self._pending: list[str] = []
        # Set at each episode announcement and epoch line: an epoch's seconds are the time since.
        self._mark: float | None = None
        # When the episode being trained was announced: its epochs' pace gives the ETA.
        self._episode_started: float | None = None

    def __call__(self, logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
        import structlog

        event = event_dict.get("event")
        if event == "seed transition" and {"slot", "from_stage", "to_stage"} <= event_dict.keys():
            reason = event_dict.get("reason")
            self._pending.append(f"  {event_dict['slot']} {event_dict['from_stage']} -> {event_dict['to_stage']}"
                                 + (f" ({reason})" if reason else ""))
            raise structlog.DropEvent
        if event == "epoch" and {"epoch", "val_accuracy", "train_loss", "decision"} <= event_dict.keys():
            lines = [self._epoch_line(event_dict)]
        else:
            if event == "episode":
                self._mark = self._episode_started = self._clock()
            lines = [self._inner(logger, name, event_dict)]
            # Transitions not followed by an epoch line (an error mid-step) still get printed, first.
            lines[:0], self._pending = self._pending, []
            return "\n".join(lines)
        lines += self._pending
        self._pending = []
        return "\n".join(lines)

    def _epoch_line(self, ev: Mapping[str, Any]) -> str:
        now = self._clock()
        seconds = "" if self._mark is None else f"  {now - self._mark:.1f}s"
        self._mark = now
        pairs = [part.partition("=") for part in str(ev.get("slots", "")).split()]
        slots = " ".join(f"{slot}={_SHORT_STAGE.get(stage, stage)}" for slot, _, stage in pairs)
        # Decision.describe() names the slot by index ("slot=0"); the line shows its name.
        words = []
        for word in str(ev["decision"]).split():
            key, _, value = word.partition("=")
            if key == "slot" and value.isdigit() and int(value) < len(pairs):
                word = pairs[int(value)][0]
            elif key in {"slot", "blueprint"}:
                word = value
            words.append(word)
        decision = " ".join(words)
        if ev.get("applied") is False and not decision.startswith("WAIT"):
            decision += " (refused)"
        return (f"epoch {ev['epoch']!s:>5}  loss {float(ev['train_loss']):.4f}  "
                f"val {float(ev['val_accuracy']):5.2f}  {slots}  {decision}{seconds}{self._eta(ev, now)}")

    def _eta(self, ev: Mapping[str, Any], now: float) -> str:
        """``  ETA 3m10s`` for the rest of the episode at its pace so far (epoch ``k/n``)."""
        done, _, total = str(ev["epoch"]).partition("/")
        if self._episode_started is None or not (done.isdigit() and total.isdigit()):
            return ""
        k, n = int(done), int(total)
        if not 0 < k < n:
            return ""
        return f"  ETA {format_duration((now - self._episode_started) / k * (n - k))}"


class DeferredLogger:
    """``structlog.get_logger(name)``, created (and structlog imported) on first use."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if attr in DeferredLogger.__slots__:  # unset slot (a copy made without __init__)
            raise AttributeError(attr)
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attr)


def deferred_logger(name: str) -> DeferredLogger:
    """A logger for ``name`` that imports structlog only when it first logs."""
    return DeferredLogger(name)
