"""Stopping a run cleanly: Ctrl-C and SIGTERM ask it to stop after the next checkpoint."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import structlog

logger = structlog.get_logger(__name__)


class RunInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run after an epoch's checkpoint; the message says how to
    resume. ``exit_code`` is the shell's for that signal: 130 (SIGINT), 143 (SIGTERM)."""

    def __init__(self, message: str, *, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signum)


#: The signals that ask a run to stop after its next checkpoint: Ctrl-C, and what `kill`, a
#: job scheduler or a container runtime sends before killing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signal(until: str = "this epoch's checkpoint") -> Iterator[list[int]]:
    """While the block runs, a first Ctrl-C or SIGTERM only asks the run to stop after the
    current epoch's checkpoint (``stop[0]`` becomes the signal's number; ``until`` names that
    point in the warning); a second one interrupts at once. Outside the main thread (where no
    handler can be installed) both keep their default behaviour."""
    stop = [0]
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop[0]:
            raise KeyboardInterrupt
        stop[0] = signum
        logger.warning(f"{signal.Signals(signum).name} received: stopping after {until} "
                       "(send it again, or Ctrl-C, to abort)")

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
