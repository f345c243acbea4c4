"""Telemetry's tables: Esper's one table format, with cells for recorded runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from esper_core.sdk import format_table as core_format_table


def fmt(value: Any, spec: str = "") -> str:
    """A table cell: '-' for missing values, ``spec`` applied to numbers."""
    if value is None:
        return "-"
    if spec and isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                 align: str | None = None) -> str:
    """Esper's table (:func:`esper_core.sdk.format_table`) with telemetry's cells: ``-`` for a
    missing value and, by default, numeric columns right-aligned."""
    return core_format_table(headers, [[fmt(c) for c in row] for row in rows],
                             "auto" if align is None else align, missing="-")
