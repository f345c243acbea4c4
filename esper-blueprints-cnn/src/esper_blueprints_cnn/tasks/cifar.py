"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) through ``torchvision.datasets``.

torchvision reads the python-pickle batches and checks every file's md5; anything missing or
corrupt becomes a :class:`~esper_core.errors.DataError` that says where we looked and how to
get the data. Nothing is downloaded unless the ``download`` option is set, and there is no
fallback to made-up data. Images are kept as uint8 tensors; augmentation and normalisation
happen on the device in :class:`~esper_blueprints_cnn.tasks.base.ImageTask`.
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from attrs import frozen

from esper_blueprints_cnn.tasks.base import ImageData, ImageTask
from esper_blueprints_cnn.tasks.options import ImageTaskOptions, read_image_task_options
from esper_core.errors import ConfigError, DataError

ALLOWED_OPTIONS = frozenset(
    {"train_size", "val_size", "test_size", "batch_size", "widths", "data_dir", "download", "augment"}
)
#: Validation images held back from the end of the training set: the official test set is the
#: held-out test split, which no controller or gate may see.
DEFAULT_VAL_SIZE = 5000
DEFAULT_OPTIONS = ImageTaskOptions(widths=(32, 64, 128), val_size=DEFAULT_VAL_SIZE)


@frozen
class CifarVariant:
    task: str
    title: str
    dataset: str  # torchvision.datasets class name
    folder: str  # torchvision's base_folder
    num_classes: int


CIFAR10 = CifarVariant("cifar10", "CIFAR-10", "CIFAR10", "cifar-10-batches-py", 10)
CIFAR100 = CifarVariant("cifar100", "CIFAR-100", "CIFAR100", "cifar-100-python", 100)


def default_data_dir() -> Path:
    """``$ESPER_DATA_DIR`` if set, else ``~/.cache/esper/data``."""
    return Path(os.environ.get("ESPER_DATA_DIR") or "~/.cache/esper/data").expanduser()


def _how_to_get(variant: CifarVariant, root: Path) -> str:
    return (
        f"to fetch it, rerun with downloading enabled (the task option download=true, "
        f"e.g. `--download`), or put torchvision's extracted '{variant.folder}' folder under "
        f"{root} (choose the directory with the task option data_dir or $ESPER_DATA_DIR)"
    )


def load_cifar(
    variant: CifarVariant, *, root: Path, train: bool, download: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as uint8 ``(N, 32, 32, 3)`` images and int64 labels, or a :class:`DataError`."""
    images, labels, _ = load_cifar_split(variant, root=root, train=train, download=download)
    return images, labels


def load_cifar_split(
    variant: CifarVariant, *, root: Path, train: bool, download: bool
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """As :func:`load_cifar`, with the class names in label order (from the dataset's meta
    file: airplane, automobile, … for CIFAR-10; the fine labels for CIFAR-100)."""
    from torchvision import datasets

    split = "training" if train else "test"
    where = root / variant.folder
    try:
        ds = getattr(datasets, variant.dataset)(root=str(root), train=train, download=download)
    except RuntimeError as exc:
        # torchvision's "Dataset not found or corrupted" (a failed file or md5 check).
        raise DataError(
            f"{variant.title} {split} data not found or corrupt in {where} ({exc}); "
            f"{_how_to_get(variant, root)}"
        ) from None
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError, TypeError) as exc:
        action = "download failed" if download else "files could not be read"
        raise DataError(
            f"{variant.title} {split} data in {where}: {action} ({type(exc).__name__}: {exc}); "
            f"{_how_to_get(variant, root)}"
        ) from None
    images = torch.from_numpy(ds.data).contiguous()
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (32, 32, 3):
        raise DataError(
            f"{variant.title} {split} data in {where} has images of {images.dtype} "
            f"{tuple(images.shape)}, expected uint8 (N, 32, 32, 3)"
        )
    if labels.shape != (images.shape[0],) or (
        labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < variant.num_classes
    ):
        raise DataError(
            f"{variant.title} {split} data in {where}: labels do not match the images or lie "
            f"outside 0..{variant.num_classes - 1}"
        )
    classes = tuple(getattr(ds, "classes", ()))
    if len(classes) != variant.num_classes or not all(isinstance(c, str) for c in classes):
        raise DataError(
            f"{variant.title} {split} data in {where}: the meta file names {len(classes)} classes, "
            f"expected {variant.num_classes} names"
        )
    return images, labels, classes


def _subset(
    images: torch.Tensor, labels: torch.Tensor, size: int | None, *, key: str, task: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``size`` examples (a fixed subset, for quick runs)."""
    if size is None:
        return images, labels
    if size > images.shape[0]:
        raise ConfigError(
            f"task {task!r}: option {key!r} is {size} but the split has only {images.shape[0]} images"
        )
    return images[:size], labels[:size]


#: ``TaskSpec.read_options`` of ``cifar10`` and ``cifar100``.
read_cifar10_options = functools.partial(read_image_task_options, CIFAR10.task, allowed=ALLOWED_OPTIONS,
                                         base=DEFAULT_OPTIONS)
read_cifar100_options = functools.partial(read_image_task_options, CIFAR100.task, allowed=ALLOWED_OPTIONS,
                                          base=DEFAULT_OPTIONS)


def make_cifar_task(
    variant: CifarVariant, *, seed: int, device: str, options: Mapping[str, Any]
) -> ImageTask:
    opts = read_image_task_options(variant.task, options=options, allowed=ALLOWED_OPTIONS, base=DEFAULT_OPTIONS)
    root = Path(opts.data_dir).expanduser() if opts.data_dir else default_data_dir()
    train_x, train_y, class_names = load_cifar_split(variant, root=root, train=True, download=opts.download)
    test_x, test_y = load_cifar(variant, root=root, train=False, download=opts.download)
    assert opts.val_size is not None
    n_val = opts.val_size
    if n_val >= train_x.shape[0]:
        raise ConfigError(
            f"task {variant.task!r}: option 'val_size' is {n_val} but the training split has only "
            f"{train_x.shape[0]} images; validation is held back from it, leaving none to train on"
        )
    val_x, val_y = train_x[-n_val:], train_y[-n_val:]
    train_x, train_y = train_x[:-n_val], train_y[:-n_val]
    train_x, train_y = _subset(train_x, train_y, opts.train_size, key="train_size", task=variant.task)
    test_x, test_y = _subset(test_x, test_y, opts.test_size, key="test_size", task=variant.task)
    data = ImageData(
        train_images=train_x, train_labels=train_y, val_images=val_x, val_labels=val_y,
        test_images=test_x, test_labels=test_y, num_classes=variant.num_classes,
    )
    task = ImageTask(
        name=variant.task, data=data, seed=seed, device=device, batch_size=opts.batch_size,
        widths=opts.widths, augment=opts.augment,
    )
    task.class_names = class_names  # exports name the classes (esper export's sidecar contract)
    return task


def make_cifar10_task(*, seed: int, device: str, options: Mapping[str, Any]) -> ImageTask:
    """TaskSpec factory of ``cifar10`` (validation held back from training; test = the test set)."""
    return make_cifar_task(CIFAR10, seed=seed, device=device, options=options)


def make_cifar100_task(*, seed: int, device: str, options: Mapping[str, Any]) -> ImageTask:
    """TaskSpec factory of ``cifar100`` (fine labels; validation held back from training)."""
    return make_cifar_task(CIFAR100, seed=seed, device=device, options=options)
