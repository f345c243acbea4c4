"""The ``sqlite`` sink: an embedded database of runs, epochs, seeds, decisions and events.

Events are buffered in memory and written in one short transaction at the end of every epoch
(and on ``flush``/``close``/run end). Short transactions let several runs share one database
file without blocking each other for a whole epoch, and a process killed mid-epoch leaves a
database holding every epoch committed before it died.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import field, frozen

from esper_core.contracts.events import EpochEnded, RunEnded, TelemetryEvent
from esper_core.errors import ConfigError, EsperError
from esper_core.options import int_at_least, non_empty_text, parse_options
from esper_core.sdk import check_sink_path
from esper_telemetry.database import RunDatabase
from esper_telemetry.limits import OutputCap
from esper_telemetry.records import DATABASE_FILE

#: Seconds a writer waits for another process's transaction on a shared database.
_BUSY_TIMEOUT_S = 30.0


@frozen(kw_only=True)
class SqliteOptions:
    #: Database file; default ``<run_dir>/run.sqlite``. Point several runs at one file to share it
    #: (a relative path is from the working directory, so runs started there share it).
    path: str | None = field(default=None, validator=non_empty_text("a path", optional=True))
    #: At most this many events per run are recorded (None: unbounded). Past it only the final
    #: run summary is still written, and the run is marked ``truncated``.
    max_rows: int | None = field(default=1_000_000, validator=int_at_least(1, optional=True))


class SqliteSink:
    """Writes events to a run database (see :mod:`esper_telemetry.database`)."""

    name = "sqlite"

    def __init__(self, path: Path, *, max_rows: int | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            # isolation_level=None: transactions are explicit (BEGIN/COMMIT in _commit).
            self._connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:  # a folder, a path it may not create
            raise EsperError(f"telemetry sink 'sqlite' cannot open {str(path)!r}: {exc}") from None
        self._database = RunDatabase(self._connection)
        try:
            self._connection.execute("BEGIN IMMEDIATE")
            self._database.create_schema()
            self._connection.execute("COMMIT")
        except (sqlite3.Error, EsperError) as exc:  # not a database, another program's, locked too long
            self._connection.close()  # closing rolls back the open transaction
            raise EsperError(f"telemetry sink 'sqlite' cannot use {str(path)!r}: {exc}") from None
        except BaseException:
            self._connection.close()
            raise
        self._pending: list[TelemetryEvent] = []
        self._caps: dict[str, OutputCap] = {}
        self._max_rows = max_rows
        self._closed = False

    @classmethod
    def from_options(cls, *, run_dir: Path | None, options: Mapping[str, Any]) -> SqliteSink:
        owner = "telemetry sink 'sqlite'"
        opts = parse_options(SqliteOptions, options, owner=owner)
        if opts.path is not None:
            # several runs may share one database, so an existing file is fine; another run's is not
            path = check_sink_path(Path(opts.path).expanduser(), run_dir, owner=owner, shared=True)
        elif run_dir is not None:  # checked too, so no other sink of the run may claim it
            path = check_sink_path(Path(run_dir) / DATABASE_FILE, run_dir, owner=owner, shared=True)
        else:
            raise ConfigError("telemetry sink 'sqlite' needs a run directory or a 'path' option")
        return cls(path, max_rows=opts.max_rows)

    def emit(self, event: TelemetryEvent) -> None:
        if self._closed:
            raise RuntimeError("emit() on a closed sqlite sink")
        self._pending.append(event)
        if isinstance(event, EpochEnded | RunEnded):
            self._commit()

    def flush(self) -> None:
        self._commit()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._commit()
        finally:
            self._closed = True
            self._connection.close()

    def _cap(self, run_id: str) -> OutputCap:
        if run_id not in self._caps:
            self._caps[run_id] = OutputCap(sink=self.name, target=f"{self.path} (run {run_id})",
                                           max_rows=self._max_rows)
        return self._caps[run_id]

    def _commit(self) -> None:
        if not self._pending or self._closed:
            return
        events, self._pending = self._pending, []
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                cap = self._cap(event.run_id)
                if cap.allow():
                    self._database.apply(event)
                elif isinstance(event, RunEnded):
                    # The summary is one UPDATE of an existing row, so it stays bounded.
                    self._database.apply(event, record_event=False)
                    self._database.mark_truncated(event.run_id)
                else:
                    self._database.mark_truncated(event.run_id)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")
