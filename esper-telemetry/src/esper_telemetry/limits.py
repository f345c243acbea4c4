"""Output caps, so that a long or runaway run cannot fill a disk without anyone noticing.

A sink asks its :class:`OutputCap` before each write. Once a cap is reached the cap answers
``False`` for ever after and logs exactly one warning naming the sink, the file and the limit:
writing stops (no rotation), which keeps every file that was written complete and readable.
"""

from __future__ import annotations

import attrs
import structlog

logger = structlog.get_logger(__name__)


@attrs.define
class OutputCap:
    """Counts rows and bytes written by one sink against optional limits."""

    sink: str
    target: str
    max_rows: int | None = None
    max_bytes: int | None = None
    rows: int = 0
    bytes: int = 0
    reached: bool = False

    def allow(self, *, rows: int = 1, nbytes: int = 0) -> bool:
        """Whether a write of ``rows`` rows / ``nbytes`` bytes fits; counts it if so."""
        if self.reached:
            return False
        over_rows = self.max_rows is not None and self.rows + rows > self.max_rows
        over_bytes = self.max_bytes is not None and self.bytes + nbytes > self.max_bytes
        if over_rows or over_bytes:
            self.reached = True
            logger.warning(
                "telemetry output cap reached; further output is dropped",
                sink=self.sink,
                target=self.target,
                max_rows=self.max_rows,
                max_bytes=self.max_bytes,
                rows_written=self.rows,
                bytes_written=self.bytes,
            )
            return False
        self.rows += rows
        self.bytes += nbytes
        return True
