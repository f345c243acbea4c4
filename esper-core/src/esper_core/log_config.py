"""structlog configuration — done once, by the CLI.

Readable console output on a terminal, JSON lines otherwise (or as forced by
``--log-format``). Library code only ever calls ``structlog.get_logger(__name__)``, except the
modules ``esper --help`` imports, which use :func:`deferred_logger`: importing structlog (and
the asyncio it imports) took 0.1 s of that command's 0.4 s on the 2-core CPU machine.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

LogFormat = Literal["auto", "console", "json"]
LEVELS = ("debug", "info", "warning", "error")


def configure_logging(level: str = "info", fmt: LogFormat = "auto") -> None:
    """Configure structlog to write to stderr at ``level`` in ``fmt``."""
    import structlog

    stream = sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
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
