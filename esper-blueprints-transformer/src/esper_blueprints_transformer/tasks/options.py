"""Validated options of the text tasks (the ``[task]`` table of a run config).

Unknown keys and bad values raise :class:`ConfigError` naming the key and what is allowed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import field, frozen

from esper_blueprints_transformer.config import GPTConfig
from esper_core.errors import ConfigError

#: Characters of the embedded corpus by default (about 0.25 MB of Python source and docstrings).
DEFAULT_CHARS = 262_144
#: ``pytext`` epoch length by default: 50 batches of 32 × 64 bytes (≈ 0.4 passes over the
#: training split), a few seconds on 2 CPU cores with the default host.
DEFAULT_PYTEXT_STEPS = 50


def _optional_int_at_least(n: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < n):
            raise ConfigError(f"task option {attribute.name} = {value!r} is invalid; expected an integer ≥ {n}")

    return check


def _int_at_least(n: int) -> Any:
    inner = _optional_int_at_least(n)

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            raise ConfigError(f"task option {attribute.name} is required; expected an integer ≥ {n}")
        inner(instance, attribute, value)

    return check


def _fraction(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
        raise ConfigError(f"task option {attribute.name} = {value!r} is invalid; expected a number in (0, 1)")


def _optional_path(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"task option {attribute.name} = {value!r} is invalid; expected a file path")


@frozen(kw_only=True)
class TextTaskOptions:
    """Data, batching and host shape of a text task."""

    #: The text file to model (``textfile`` only; required there).
    path: str | None = field(default=None, validator=_optional_path)
    #: Cap on the characters read (``pytext``: corpus size; ``textfile``: none by default).
    chars: int | None = field(default=None, validator=_optional_int_at_least(1))
    batch_size: int = field(default=32, validator=_int_at_least(1))
    #: Training batches per epoch; ``None``: as many as cover the training split once on average.
    steps_per_epoch: int | None = field(default=None, validator=_optional_int_at_least(1))
    val_fraction: float = field(default=0.1, validator=_fraction)
    #: The held-out test split, at the end of the text (never seen by controllers or gates).
    test_fraction: float = field(default=0.1, validator=_fraction)
    #: Cap on validation batches (validation runs once per epoch, plus counterfactual passes).
    max_val_batches: int = field(default=8, validator=_int_at_least(1))
    context: int = field(default=64, validator=_int_at_least(1))
    n_layers: int = field(default=2, validator=_int_at_least(1))
    d_model: int = field(default=64, validator=_int_at_least(1))
    n_heads: int = field(default=4, validator=_int_at_least(1))
    dropout: float = field(default=0.0)
    layers_per_point: int = field(default=1, validator=_int_at_least(1))

    def host_config(self) -> GPTConfig:
        """The byte-level GPT these options describe (raises ConfigError when inconsistent)."""
        return GPTConfig(
            vocab_size=256,
            context=self.context,
            n_layers=self.n_layers,
            d_model=self.d_model,
            n_heads=self.n_heads,
            dropout=self.dropout,
            layers_per_point=self.layers_per_point,
        )


#: Option keys each task accepts.
PYTEXT_KEYS = tuple(sorted(a.name for a in attrs.fields(TextTaskOptions) if a.name != "path"))
TEXTFILE_KEYS = tuple(sorted(a.name for a in attrs.fields(TextTaskOptions)))


def parse_options(options: Mapping[str, Any], *, task: str, allowed: tuple[str, ...]) -> TextTaskOptions:
    """Validate ``options`` for ``task``: every key in ``allowed``, every value in range."""
    for key in options:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown option {key!r} for task {task!r}{hint}; allowed options: {', '.join(allowed)}"
            )
    values = dict(options)
    if task == "pytext":
        values.setdefault("chars", DEFAULT_CHARS)
        values.setdefault("steps_per_epoch", DEFAULT_PYTEXT_STEPS)
    parsed = TextTaskOptions(**values)
    parsed.host_config()  # surface shape errors (heads vs width ...) before any data is read
    return parsed
