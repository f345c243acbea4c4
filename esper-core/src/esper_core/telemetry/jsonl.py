"""The ``jsonl`` sink: one event record per line in ``events.jsonl``.

Each line is written whole (``write`` of a complete line, then ``flush`` at least per epoch),
so a run killed at any point leaves a file whose every complete line parses; a torn last line
can only be a line still being written, which :func:`read_events` skips.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import structlog
from attrs import field, frozen

from esper_core.contracts.events import EpochEnded, RunEnded, TelemetryEvent
from esper_core.errors import CheckpointError, ConfigError
from esper_core.options import int_at_least, non_empty_text, parse_options

logger = structlog.get_logger(__name__)

EVENTS_FILE = "events.jsonl"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


@frozen(kw_only=True)
class JsonlOptions:
    """``[telemetry.jsonl]``."""

    #: The events file; default ``<run_dir>/events.jsonl``. A relative path is from the working
    #: directory, like every path on the command line.
    path: str | None = field(default=None, validator=non_empty_text("a path", optional=True))
    #: Stop writing before the file would exceed this many bytes.
    max_bytes: int = field(default=DEFAULT_MAX_BYTES, validator=int_at_least(1))


class EventsLost(CheckpointError):
    """The events file is shorter than a checkpoint recorded: events were lost after it."""

    def __init__(self, path: Path, *, size: int, expected: int, last: tuple[int, int] | None) -> None:
        self.path, self.size, self.expected, self.last = path, size, expected, last
        after = f"after epoch {last[1]} of episode {last[0]}" if last else "from the start"
        super().__init__(f"{str(path)!r} holds {size} bytes but the checkpoint recorded {expected}: "
                         f"its events {after} were lost; restore the file or start a new run")


def last_epoch(path: Path) -> tuple[int, int] | None:
    """(episode, epoch) of the last readable epoch record in ``path``, None if there is none."""
    last = None
    for record in read_events(path):
        if record.get("kind") == "epoch" and type(record.get("episode")) is int and type(record.get("epoch")) is int:
            last = (record["episode"], record["epoch"])
    return last


class JsonlSink:
    """Append events to a JSONL file; stops (with one warning) at ``max_bytes``."""

    name = "jsonl"

    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._written = path.stat().st_size if path.exists() else 0
        # The sink holds the file open across emits until close(), so no `with` block.
        self._handle: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._capped = False

    @classmethod
    def from_options(cls, *, run_dir: Path | None, options: Mapping[str, Any],
                     check_path: Callable[[Path], object] | None = None) -> JsonlSink:
        """The sink ``options`` describe; ``check_path`` (the engine's
        :func:`esper_core.storage.outputs.check_sink_path`) may refuse its file before it is opened."""
        opts = parse_options(JsonlOptions, options, owner="telemetry sink 'jsonl'")
        if opts.path is None and run_dir is None:
            raise ConfigError("the jsonl sink needs a run directory or a 'path' option")
        path = Path(opts.path) if opts.path is not None else run_dir / EVENTS_FILE  # type: ignore[operator]
        if check_path is not None:
            check_path(path)
        return cls(path, max_bytes=opts.max_bytes)

    def emit(self, event: TelemetryEvent) -> None:
        if self._handle is None or self._capped:
            return
        line = json.dumps(event.to_record(), default=str, allow_nan=True) + "\n"
        if self._written + len(line) > self.max_bytes:
            self._capped = True
            logger.warning("jsonl_cap_reached", path=str(self.path), max_bytes=self.max_bytes)
            return
        self._handle.write(line)
        self._written += len(line)
        if isinstance(event, EpochEnded | RunEnded):
            self._handle.flush()

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def position(self) -> int:
        """Bytes written so far (flushed): where :meth:`rewind` returns to."""
        self.flush()
        return self._written

    def rewind(self, position: int | None) -> None:
        """Truncate the file to ``position`` bytes (None: empty) and append from there."""
        if self._handle is None:
            return
        size = 0 if position is None else int(position)
        self._handle.flush()
        actual = self.path.stat().st_size
        if size > actual:  # truncating "up" would pad with NUL bytes and hide the loss
            raise EventsLost(self.path, size=actual, expected=size, last=last_epoch(self.path))
        self._handle.truncate(size)
        self._written = size
        self._capped = False

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete record in a JSONL file: a torn final line, a line that is not UTF-8 or
    not JSON, and a line that is not a JSON object are skipped."""
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if isinstance(record, dict):
                yield record
