"""attrs validators shared by the contract classes."""

from __future__ import annotations

import re
from typing import Any

import attrs

_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


def component_name(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """A lower-case identifier: letters, digits, ``_`` and ``-``, starting with a letter."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name} must be a lower-case name "
            f"(letters, digits, '_' or '-', starting with a letter), got {value!r}"
        )


def non_empty_str(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must be a non-empty string")


def is_callable(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not callable(value):
        raise TypeError(f"{type(instance).__name__}.{attribute.name} must be callable, got {value!r}")
