"""Plain-text aligned tables for terminal output (no dependency, stable for tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fmt(value: Any, spec: str = "") -> str:
    """A table cell: '-' for missing values, ``spec`` applied to numbers."""
    if value is None:
        return "-"
    if spec and isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                 align: str | None = None) -> str:
    """Columns padded to their widest cell; ``align`` has one 'l' or 'r' per column.

    By default a column is right-aligned when every non-empty cell in it looks numeric.
    """
    cells = [[fmt(c) for c in row] for row in rows]
    n = len(headers)
    if align is None:
        align = "".join(
            "r" if cells and all(_numeric(row[i]) for row in cells if row[i] != "-") else "l"
            for i in range(n)
        )
    widths = [max([len(headers[i]), *(len(row[i]) for row in cells)]) for i in range(n)]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule, *(line(row) for row in cells)])


def _numeric(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("%s"))
    except ValueError:
        return False
    return True
