"""Value converters for options and configs (torch-free).

Values may come from TOML (typed) or from command-line overrides (strings), so each converter
accepts both and raises ``ValueError`` saying what the value must be.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"must be true or false, got {value!r}")


def _to_int(value: Any, *, minimum: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"must be an integer >= {minimum}, got {value!r}")
    return value


def to_positive_int(value: Any) -> int:
    return _to_int(value, minimum=1)


def to_optional_size(value: Any) -> int | None:
    return None if value is None else _to_int(value, minimum=1)


def to_seed(value: Any) -> int:
    return _to_int(value, minimum=0)


def to_image_size(value: Any) -> int:
    """Side of a square procedural image in pixels (the renderer needs at least 4)."""
    return _to_int(value, minimum=4)


def to_fraction(value: Any) -> float:
    """A fraction strictly between 0 and 1 (a split carved from another keeps both non-empty)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"must be a number between 0 and 1, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def to_widths(value: Any) -> tuple[int, ...]:
    """A non-empty sequence of positive ints; ``"8,16,32"`` is accepted from the command line."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Mapping) or not hasattr(value, "__iter__"):
        raise ValueError(f"must be a list of positive integers, got {value!r}")
    widths = tuple(to_positive_int(v) for v in value)
    if not widths:
        raise ValueError("must name at least one block width")
    return widths


def to_optional_path(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty path string, got {value!r}")
    return value
