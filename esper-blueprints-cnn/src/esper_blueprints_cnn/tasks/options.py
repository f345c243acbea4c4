"""Validated task options (torch-free).

A run's ``[task.options]`` table (or CLI overrides, which may arrive as strings) is checked
key by key: an unknown key is a :class:`ConfigError` that names it and the allowed keys; a bad
value is a :class:`ConfigError` that names the key and what it must be.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

import attrs
from attrs import field, frozen

from esper_blueprints_cnn.converters import (
    to_bool,
    to_fraction,
    to_image_size,
    to_optional_path,
    to_optional_size,
    to_positive_int,
    to_seed,
    to_widths,
)
from esper_core.errors import ConfigError


@frozen(kw_only=True)
class ImageTaskOptions:
    """Every option an image task understands; each task allows a subset (see ``ALLOWED``)."""

    #: Training images used (``None``: the task's default; CIFAR: the whole training set).
    train_size: int | None = field(default=None, converter=to_optional_size)
    #: Validation images used (``None``: the task's default; CIFAR: 5,000 held back from the
    #: training set).
    val_size: int | None = field(default=None, converter=to_optional_size)
    #: Held-out test images (``None``: the task's default; CIFAR: the whole test set).
    test_size: int | None = field(default=None, converter=to_optional_size)
    batch_size: int = field(default=128, converter=to_positive_int)
    #: Host block widths (one injection point per block).
    widths: tuple[int, ...] = field(default=(8, 16, 32), converter=to_widths)
    #: Where dataset files live (``None``: ``$ESPER_DATA_DIR`` or ``~/.cache/esper/data``).
    data_dir: str | None = field(default=None, converter=to_optional_path)
    #: Fetch the dataset when it is missing (never done unless asked).
    download: bool = field(default=False, converter=to_bool)
    #: Random 4-pixel-padded crops and horizontal flips on training batches.
    augment: bool = field(default=True, converter=to_bool)
    #: Seed of the procedural dataset itself (the run seed drives init and shuffling).
    data_seed: int = field(default=0, converter=to_seed)
    #: Training images per epoch, drawn afresh each epoch from the training set (``None``: all).
    epoch_size: int | None = field(default=None, converter=to_optional_size)
    #: Side of the square procedural images in pixels (``shapes``: 32, ``micro``: 16); for
    #: ``imagefolder`` the side every image is resized to.
    image_size: int = field(default=32, converter=to_image_size)
    #: The data file or folder of the own-data tasks (``--data``).
    path: str | None = field(default=None, converter=to_optional_path)
    #: Share of the training split carved off as validation when the data has no validation split.
    val_fraction: float = field(default=0.1, converter=to_fraction)
    #: Share of the training split carved off as test when the data has no test split.
    test_fraction: float = field(default=0.1, converter=to_fraction)


def parse_options(
    task: str, options: Mapping[str, Any], *, allowed: Set[str], defaults: ImageTaskOptions
) -> ImageTaskOptions:
    """Validate ``options`` for ``task`` on top of ``defaults``; raise :class:`ConfigError`."""
    if not isinstance(options, Mapping):
        raise ConfigError(f"task {task!r}: options must be a table of key = value, got {options!r}")
    known = ", ".join(sorted(allowed))
    result = defaults
    for key, value in options.items():
        if key not in allowed:
            raise ConfigError(f"task {task!r}: unknown option {key!r}; allowed options: {known}")
        try:
            result = attrs.evolve(result, **{key: value})
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"task {task!r}: option {key!r} {exc}") from None
    return result
