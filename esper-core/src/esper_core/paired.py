"""Paired comparisons: two policies (or methods) measured on the same episodes or seeds.

Torch-free, so a benchmark's report and ``esper evaluate`` share it without the engine.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float | int | None]:
    """Mean and sample sd of ``a − b`` over paired episodes, with the paired t statistic
    (mean / (sd / √n); None when it is undefined: one pair, or no spread — differences equal up
    to float rounding count as no spread, which would otherwise give a t of 1e16)."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean = statistics.fmean(d)
    sd = statistics.stdev(d) if len(d) > 1 else 0.0
    spread = sd > 1e-9 * max(1.0, *(abs(x) for x in d))
    t = mean / (sd / math.sqrt(len(d))) if len(d) > 1 and spread else None
    return {"mean": mean, "sd": sd, "t": t, "n": len(d)}
