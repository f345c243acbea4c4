"""Read a run directory's recorded telemetry back as typed events.

``events.jsonl`` is appended line by line while a run trains, so a run killed mid-write can
leave a truncated last line; readers skip unreadable lines (with one warning saying how many)
instead of refusing the whole file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from esper_core.contracts.events import TelemetryEvent, event_from_record
from esper_core.sdk import deferred_logger

logger = deferred_logger(__name__)

EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"
DATABASE_FILE = "run.sqlite"


def event_or_none(raw: bytes | str) -> TelemetryEvent | None:
    """The event one JSONL line or database row holds, or None when it holds none: bytes that
    are not UTF-8, not JSON, nested too deeply, not an object, an unknown kind or schema, or a
    field of the wrong type."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        record = json.loads(text)
        if not isinstance(record, dict):
            return None
        return event_from_record(record)
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def iter_event_records(path: Path) -> Iterator[TelemetryEvent]:
    """Yield the events of a JSONL file, skipping lines that do not hold one."""
    skipped = 0
    with path.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            event = event_or_none(line)
            if event is None:
                skipped += 1
            else:
                yield event
    if skipped:
        logger.warning("skipped unreadable telemetry lines", path=str(path), lines=skipped)


def read_events(path: Path) -> list[TelemetryEvent]:
    return list(iter_event_records(path))


def read_summary(run_dir: Path) -> Mapping[str, Any] | None:
    """The run's ``summary.json``, or None when it is missing or not a JSON object."""
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        logger.warning("unreadable run summary", path=str(path))
        return None
    return data if isinstance(data, dict) else None
