"""Plain aligned text tables for terminal output: one formatter for every table Esper prints."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None, *,
                 missing: str = "") -> str:
    """Columns padded to their widest cell, two spaces apart, with a rule under the header.

    ``align`` has one ``l`` or ``r`` per column; ``"auto"`` right-aligns a column whose cells
    (``missing`` ones aside) all read as numbers; None left-aligns every column. A ``None`` cell
    prints as ``missing``.
    """
    cells = [[str(h) for h in headers]] + [[missing if c is None else str(c) for c in row] for row in rows]
    n = len(headers)
    if align is None:
        align = "l" * n
    elif align == "auto":
        align = "".join(
            "r" if len(cells) > 1 and all(_numeric(row[i]) for row in cells[1:] if row[i] != missing) else "l"
            for i in range(n))
    widths = [max(len(r[i]) for r in cells) for i in range(n)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w)
                         for c, w, a in zip(row, widths, align, strict=True)).rstrip()

    lines = [line(r) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("%s"))
    except ValueError:
        return False
    return True
