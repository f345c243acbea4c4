"""The ``timeline`` telemetry sink: ``timeline.tsv`` in the run directory, one line per event.

Each line is ``epoch<TAB>kind<TAB>record``, the record being the event's JSON, so the file can
be skimmed or grepped by kind (``grep -P '\\tseed_lifecycle\\t' timeline.tsv``) and still read
back losslessly. Select it with ``esper run --telemetry jsonl,timeline``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from attrs import field, frozen

from esper_core.contracts.events import EpochEnded, RunEnded, TelemetryEvent
from esper_core.errors import ConfigError
from esper_core.options import non_empty_text, parse_options

TIMELINE_FILE = "timeline.tsv"


@frozen(kw_only=True)
class TimelineOptions:
    """The ``[telemetry.timeline]`` table. The plugin declares this class on its ``SinkSpec``, so
    Esper checks the table when a run is resolved, even in a run that leaves the sink out."""

    #: The file to write; default ``<run_dir>/timeline.tsv``.
    path: str | None = field(default=None, validator=non_empty_text("a path", optional=True))


class TimelineSink:
    name = "timeline"

    def __init__(self, path: Path) -> None:
        self.path = path
        # The sink holds the file open across emits until close(), so no `with` block.
        self._handle: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115

    @classmethod
    def from_options(cls, *, run_dir: Path | None, options: Mapping[str, Any]) -> TimelineSink:
        """Options come from the run config's ``[telemetry.timeline]`` table (:class:`TimelineOptions`)."""
        opts = parse_options(TimelineOptions, options, owner="telemetry sink 'timeline'")
        if opts.path is not None:
            return cls(Path(opts.path))
        if run_dir is None:
            raise ConfigError("the timeline sink needs a run directory or a 'path' option")
        return cls(Path(run_dir) / TIMELINE_FILE)

    def emit(self, event: TelemetryEvent) -> None:
        if self._handle is None:
            return
        record = json.dumps(event.to_record(), default=str)
        self._handle.write(f"{event.epoch}\t{event.kind}\t{record}\n")
        # Durable at epoch granularity: a killed run keeps every finished epoch.
        if isinstance(event, EpochEnded | RunEnded):
            self._handle.flush()

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_timeline(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a timeline file, in order."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line.rstrip("\n").split("\t", 2)[2])
