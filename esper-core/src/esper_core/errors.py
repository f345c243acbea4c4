"""The exception hierarchy every Esper component raises.

One base class lets the CLI turn any expected failure into a one-line message and exit 2,
while genuine bugs still surface as tracebacks.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from esper_core.wording import plural


class EsperError(Exception):
    """Base class of every error Esper reports to users as a clean message."""


class ConfigError(EsperError):
    """A configuration key, value or file is invalid."""


class PluginError(EsperError):
    """A plugin failed to load, returned bad data or collided with another plugin."""


class UnknownNameError(EsperError, KeyError):
    """A component name (task, policy, blueprint, gate, sink ...) is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"unknown {self.kind} {self.name!r}"
        close = difflib.get_close_matches(self.name, self.known, n=1, cutoff=0.6)
        if close:
            text += f" (did you mean {close[0]!r}?)"
        known = ", ".join(self.known) if self.known else "none registered"
        return f"{text}; known {plural(self.kind)}: {known}"

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class InvalidTransitionError(EsperError):
    """A seed was asked to move between two lifecycle stages that are not connected."""


class CheckpointError(EsperError):
    """A run checkpoint cannot be written, read or used for this run."""


class DataError(EsperError):
    """A dataset is missing, corrupt or unreadable."""


class OutOfMemory(EsperError):
    """An allocation failed: the run asked for more memory than the machine could give."""
