"""Turning a policy's ``context.options`` mapping into a validated attrs config.

Options come from the user's run config (TOML or CLI overrides), so every failure must be
a :class:`~esper_core.errors.ConfigError` that names the offending key and the allowed ones,
never a bare ``TypeError`` from a constructor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from esper_core.errors import ConfigError

T = TypeVar("T")

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def config_from_options(cls: type[T], options: Mapping[str, Any], *, owner: str) -> T:
    """Build ``cls(**options)``; unknown keys and bad values raise :class:`ConfigError`."""
    allowed = [a.name for a in attrs.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(k for k in options if k not in allowed)
    if unknown:
        raise ConfigError(
            f"unknown {owner} option {unknown[0]!r}; allowed options: {', '.join(allowed)}"
        )
    try:
        return cls(**dict(options))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {owner} option: {exc}") from exc


def reject_options(options: Mapping[str, Any], *, owner: str) -> None:
    """For policies without options: any key is an error (a typo must not pass silently)."""
    if options:
        first = sorted(options)[0]
        raise ConfigError(f"unknown {owner} option {first!r}; the {owner} policy takes no options")


def _is_number(value: Any) -> bool:
    # bool is an int subclass; True as a threshold is almost certainly a config mistake.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def int_at_least(low: int) -> Validator:
    """An ``int`` (not a bool) that is ``≥ low``."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{attribute.name} must be an integer ≥ {low}, got {value!r}")

    return check


def number_in(low: float, high: float = math.inf, *, low_open: bool = False) -> Validator:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not _is_number(value) or (value <= low if low_open else value < low) or value > high:
            bracket = "(" if low_open else "["
            upper = "∞)" if math.isinf(high) else f"{high:g}]"
            interval = f"{bracket}{low:g}, {upper}"
            raise ValueError(
                f"{attribute.name} must be a finite number in {interval}, got {value!r}"
            )

    return check


def any_number(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Any finite number (thresholds that may legitimately be negative)."""
    if not _is_number(value):
        raise ValueError(f"{attribute.name} must be a finite number, got {value!r}")


def is_bool(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name} must be true or false, got {value!r}")


def one_of(*choices: str) -> Validator:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise ValueError(
                f"{attribute.name} must be one of {', '.join(choices)}, got {value!r}"
            )

    return check


def optional(check: Validator) -> Validator:
    """``check``, or ``None`` (meaning "use the default behaviour")."""

    def optional_check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(instance, attribute, value)

    return optional_check
