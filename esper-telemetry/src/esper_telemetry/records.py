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
    data, problem = summary_and_problem(run_dir)
    if problem is not None:
        logger.warning("unreadable run summary", path=str(run_dir / SUMMARY_FILE), why=problem)
    return data


def summary_and_problem(run_dir: Path) -> tuple[Mapping[str, Any] | None, str | None]:
    """The run's ``summary.json`` and None; or None and what makes it unusable, in words
    ("it is empty", "it is not valid JSON: …", "it holds a list, not a JSON object"); (None,
    None) when there is none."""
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return None, None
    try:
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            return None, "it is empty"
        data = json.loads(text)
    except OSError as exc:
        return None, f"it cannot be read: {exc.strerror or exc}"
    except UnicodeDecodeError:
        return None, "it is not UTF-8 text"
    except ValueError as exc:
        return None, f"it is not valid JSON: {exc}"
    except RecursionError:
        return None, "it is nested too deeply"
    if not isinstance(data, dict):
        return None, f"it holds a JSON {type(data).__name__}, not an object"
    return data, None
