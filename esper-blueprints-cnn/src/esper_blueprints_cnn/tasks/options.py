"""Validated task options (torch-free).

A run's ``[task]`` table (or CLI overrides, which may arrive as strings) is built into
:class:`ImageTaskOptions` by :func:`esper_core.options.parse_options`, each task allowing a
subset of the keys: an unknown key or a bad value is a ``ConfigError`` naming the task, the key
and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import field, frozen

from esper_blueprints_cnn.converters import to_widths
from esper_core.options import as_bool, as_fraction, as_int, as_path, parse_options


@frozen(kw_only=True)
class ImageTaskOptions:
    """Every option an image task understands; each task allows a subset (see ``ALLOWED``)."""

    # as_int(...) is a call, and mypy's attrs plugin reads only named functions and lambdas as
    # converters (hence the ignores); __init__ takes Any for these fields either way.
    #: Training images used (``None``: the task's default; CIFAR: the whole training set).
    train_size: int | None = field(default=None, converter=as_int(1, optional=True))  # type: ignore[misc]
    #: Validation images used (``None``: the task's default; CIFAR: 5,000 held back from the
    #: training set).
    val_size: int | None = field(default=None, converter=as_int(1, optional=True))  # type: ignore[misc]
    #: Held-out test images (``None``: the task's default; CIFAR: the whole test set).
    test_size: int | None = field(default=None, converter=as_int(1, optional=True))  # type: ignore[misc]
    batch_size: int = field(default=128, converter=as_int(1))  # type: ignore[misc]
    #: Host block widths (one injection point per block).
    widths: tuple[int, ...] = field(default=(8, 16, 32), converter=to_widths)
    #: Where dataset files live (``None``: ``$ESPER_DATA_DIR`` or ``~/.cache/esper/data``).
    data_dir: str | None = field(default=None, converter=as_path)
    #: Fetch the dataset when it is missing (never done unless asked).
    download: bool = field(default=False, converter=as_bool)
    #: Random 4-pixel-padded crops and horizontal flips on training batches.
    augment: bool = field(default=True, converter=as_bool)
    #: Seed of the procedural dataset itself (the run seed drives init and shuffling).
    data_seed: int = field(default=0, converter=as_int(0))  # type: ignore[misc]
    #: Training images per epoch, drawn afresh each epoch from the training set (``None``: all).
    epoch_size: int | None = field(default=None, converter=as_int(1, optional=True))  # type: ignore[misc]
    #: Side of the square procedural images in pixels (``shapes``: 32, ``micro``: 16); for
    #: ``imagefolder`` the side every image is resized to.
    image_size: int = field(default=32, converter=as_int(4))  # type: ignore[misc]
    #: The data file or folder of the own-data tasks (``--data``).
    path: str | None = field(default=None, converter=as_path)
    #: Share of the training split carved off as validation when the data has no validation split.
    val_fraction: float = field(default=0.1, converter=as_fraction)
    #: Share of the training split carved off as test when the data has no test split.
    test_fraction: float = field(default=0.1, converter=as_fraction)


def read_image_task_options(task: str, *, options: Mapping[str, Any], allowed: Iterable[str],
                            base: ImageTaskOptions) -> ImageTaskOptions:
    """Image task ``task``'s options: the keys it ``allowed``, on top of its defaults ``base``.
    Each task's factory reads its options with it, and so does its ``TaskSpec.read_options``
    (a ``functools.partial`` of it), so the two cannot disagree."""
    return parse_options(ImageTaskOptions, options, owner=f"task {task!r}", allowed=allowed, base=base)
