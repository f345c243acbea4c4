"""Validated options of the text tasks (the ``[task]`` table of a run config).

Unknown keys and bad values raise :class:`ConfigError` naming the task, the key and what is
allowed (:func:`esper_core.options.parse_options`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from attrs import field, frozen

from esper_blueprints_transformer.config import GPTConfig
from esper_core.errors import ConfigError
from esper_core.options import int_at_least, non_empty_text, number_in, parse_options

#: Characters of the embedded corpus by default (about 0.25 MB of Python source and docstrings).
DEFAULT_CHARS = 262_144
#: ``pytext`` epoch length by default: 50 batches of 32 × 64 bytes (≈ 0.4 passes over the
#: training split), a few seconds on 2 CPU cores with the default host.
DEFAULT_PYTEXT_STEPS = 50


@frozen(kw_only=True)
class TextTaskOptions:
    """Data, batching and host shape of a text task."""

    #: The text file to model (``textfile`` only; required there).
    path: str | None = field(default=None, validator=non_empty_text("a file path", optional=True))
    #: Cap on the characters read (``pytext``: corpus size; ``textfile``: none by default).
    chars: int | None = field(default=None, validator=int_at_least(1, optional=True))
    batch_size: int = field(default=32, validator=int_at_least(1))
    #: Training batches per epoch; ``None``: as many as cover the training split once on average.
    steps_per_epoch: int | None = field(default=None, validator=int_at_least(1, optional=True))
    val_fraction: float = field(default=0.1, validator=number_in(0.0, 1.0, low_open=True, high_open=True))
    #: The held-out test split, at the end of the text (never seen by controllers or gates).
    test_fraction: float = field(default=0.1, validator=number_in(0.0, 1.0, low_open=True, high_open=True))
    #: Cap on validation batches (validation runs once per epoch, plus counterfactual passes).
    max_val_batches: int = field(default=8, validator=int_at_least(1))
    context: int = field(default=64, validator=int_at_least(1))
    n_layers: int = field(default=2, validator=int_at_least(1))
    d_model: int = field(default=64, validator=int_at_least(1))
    n_heads: int = field(default=4, validator=int_at_least(1))
    dropout: float = field(default=0.0)
    layers_per_point: int = field(default=1, validator=int_at_least(1))

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


def text_task_options(options: Mapping[str, Any], *, task: str, allowed: tuple[str, ...]) -> TextTaskOptions:
    """Validate ``options`` for ``task``: every key in ``allowed``, every value in range, and a
    host shape that is consistent (heads vs width ...) before any data is read."""
    owner = f"task {task!r}"
    base = TextTaskOptions(chars=DEFAULT_CHARS, steps_per_epoch=DEFAULT_PYTEXT_STEPS) if task == "pytext" else None
    parsed = parse_options(TextTaskOptions, options, owner=owner, allowed=allowed, base=base)
    try:
        parsed.host_config()
    except ConfigError as exc:
        raise ConfigError(f"{owner}: {exc}") from None
    return parsed


def read_pytext_options(*, options: Mapping[str, Any]) -> TextTaskOptions:
    """``TaskSpec.read_options`` of ``pytext``: its options, defaults filled in."""
    return text_task_options(options, task="pytext", allowed=PYTEXT_KEYS)


def read_textfile_options(*, options: Mapping[str, Any]) -> TextTaskOptions:
    """``TaskSpec.read_options`` of ``textfile``: its options, defaults filled in."""
    return text_task_options(options, task="textfile", allowed=TEXTFILE_KEYS)
