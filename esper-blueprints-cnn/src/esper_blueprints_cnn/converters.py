"""The host's block widths as a value converter (torch-free).

Values may come from TOML (a list) or from the command line (``"8,16,32"``); the general
converters (``as_int``, ``as_bool`` ...) are :mod:`esper_core.options`'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from esper_core.options import InvalidValue, as_int, name_list

_EXPECTED = "a non-empty list of positive integers"
_positive = as_int(1)


def to_widths(value: Any) -> tuple[int, ...]:
    """A non-empty sequence of positive ints; ``"8,16,32"`` is accepted from the command line,
    where a blank item (``"8,,32"``, ``","``, a trailing comma) is refused, not dropped."""
    given = value
    if isinstance(value, str):
        try:
            value = name_list(value, noun="block width")
        except InvalidValue as exc:
            raise InvalidValue(None, given, _EXPECTED, exc.got) from None
    if isinstance(value, Mapping) or not hasattr(value, "__iter__"):
        raise InvalidValue(None, given, _EXPECTED)
    try:
        widths = tuple(_positive(v) for v in value)
    except InvalidValue:
        raise InvalidValue(None, given, _EXPECTED) from None
    if not widths:
        raise InvalidValue(None, given, _EXPECTED)
    return widths
