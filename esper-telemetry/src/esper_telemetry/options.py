"""Turn a sink's free-form ``options`` mapping into its validated attrs options class.

Sinks are configured from TOML or ``--telemetry-option`` style flags, so a misspelt key must
fail loudly (naming the key and the allowed ones) rather than be silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from esper_core.errors import ConfigError

T = TypeVar("T")


def parse_options(cls: type[T], options: Mapping[str, Any] | None, *, owner: str) -> T:
    """Build ``cls(**options)``; unknown keys and invalid values raise :class:`ConfigError`."""
    given = dict(options or {})
    allowed = sorted(a.name for a in attrs.fields(cls))  # type: ignore[arg-type]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} for telemetry sink {owner!r}; "
            f"allowed options: {', '.join(allowed) if allowed else 'none'}"
        )
    try:
        return cls(**given)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid option for telemetry sink {owner!r}: {exc}") from exc


def positive_or_none(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    """A cap: ``None`` (unbounded) or an int ≥ 1."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer or None, got {value!r}")
