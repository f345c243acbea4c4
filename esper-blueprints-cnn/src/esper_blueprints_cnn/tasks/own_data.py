"""``imagefolder`` and ``arrays``: train on your own images without writing a plugin.

``imagefolder`` reads ``DIR/train/CLASS/*`` (and ``DIR/val/CLASS/*``, ``DIR/test/CLASS/*`` when
present; torchvision's ``ImageFolder`` layout per split) with PIL, converts every image to RGB
and resizes it to ``image_size`` × ``image_size``. Class names are the folder names, and every
split must have the same ones. Hidden files (a leading dot, e.g. ``.DS_Store``) are skipped; any
other file that PIL cannot read is refused by name rather than skipped, so a stray file never
silently shrinks a class.

``arrays`` reads an ``.npz`` (``np.load(allow_pickle=False)``) or a ``.pt`` file
(``torch.load(weights_only=True)``) holding ``x_train, y_train`` (optionally ``x_val, y_val``
and ``x_test, y_test``) or ``x, y``. Images are ``N×C×H×W``; vectors (``N×F``) are not
supported yet. uint8 and integer images must lie in 0..255; float images must lie in [0, 1]
(scaled by 255) or in [0, 255] (rounded), decided once for the whole file, because the image
task keeps uint8 images on the device and normalises them itself. Anything else is refused with
a message that names what is wrong.

A split that the data lacks is carved from the training split (``val_fraction``,
``test_fraction``) after one shuffle seeded by ``data_seed``, so the same file and options always
give the same splits. Normalisation statistics come from the training split alone
(:class:`~esper_blueprints_cnn.tasks.base.ImageTask`). Nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esper_blueprints_cnn.tasks.base import ImageData, ImageTask, stream_seed
from esper_blueprints_cnn.tasks.options import ImageTaskOptions, read_image_task_options
from esper_core.errors import ConfigError, DataError
from esper_core.sdk import UnreadableTorchFile, check_input_file, load_torch_file, require_memory

SPLITS = ("train", "val", "test")
_COMMON_OPTIONS = {"path", "train_size", "epoch_size", "batch_size", "widths", "augment",
                   "data_seed", "val_fraction", "test_fraction"}
IMAGEFOLDER_OPTIONS = frozenset(_COMMON_OPTIONS | {"image_size"})
ARRAYS_OPTIONS = frozenset(_COMMON_OPTIONS)
DEFAULT_OPTIONS = ImageTaskOptions()
_SPLIT_STREAM = 0x5B17


def _need_path(task: str, opts: ImageTaskOptions, what: str) -> Path:
    if opts.path is None:
        raise ConfigError(f"task {task!r} needs {what}: pass --data PATH (task option 'path')")
    return Path(opts.path).expanduser()


# --- image folders ---------------------------------------------------------------------------


def _read_image(path: str, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    check_input_file(path, label="image", error=DataError)  # a named pipe would block Image.open
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    # PIL refuses images over its pixel limit (a decompression bomb) before decoding them.
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable image ({type(exc).__name__}: {exc})") from None


def read_image_split(root: Path, size: int) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Class names, uint8 ``(N, size, size, 3)`` images and int64 labels of one split folder."""
    from torchvision.datasets import ImageFolder

    try:
        folder = ImageFolder(str(root), loader=lambda p: p,
                             is_valid_file=lambda p: not Path(p).name.startswith("."))
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"image folder {root}: {exc}") from None
    if len(folder.samples) == 0:
        raise DataError(f"image folder {root} holds no images")
    # Decoded images are held once as a list and once stacked.
    count = len(folder.samples)
    require_memory(f"image folder {root}", what=f"its {count} images at {size}×{size} pixels",
                   needed=2 * count * size * size * 3, remedy="lower image_size")
    images = np.stack([_read_image(p, size) for p, _ in folder.samples])
    labels = torch.as_tensor([label for _, label in folder.samples], dtype=torch.int64)
    return list(folder.classes), torch.from_numpy(images), labels


def load_image_folder(
    root: Path, size: int
) -> tuple[list[str], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Class names and the splits present under ``root`` (``train`` is required)."""
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a directory")
    if not (root / "train").is_dir():
        raise DataError(f"image folder {root} has no train/ folder; expected train/CLASS/* "
                        "(and optionally val/CLASS/*, test/CLASS/*)")
    classes: list[str] | None = None
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for split in SPLITS:
        if not (root / split).is_dir():
            continue
        names, images, labels = read_image_split(root / split, size)
        if classes is None:
            classes = names
        elif names != classes:
            missing = sorted(set(classes) - set(names))
            extra = sorted(set(names) - set(classes))
            raise DataError(f"image folder {root}: {split}/ has different classes from train/ "
                            f"(missing: {', '.join(missing) or 'none'}; "
                            f"extra: {', '.join(extra) or 'none'})")
        splits[split] = (images, labels)
    assert classes is not None
    if len(classes) < 2:
        raise DataError(f"image folder {root}: train/ has {len(classes)} class folder; "
                        "classification needs at least 2 classes")
    return classes, splits


# --- array files ---------------------------------------------------------------------------------


def _read_array_file(path: Path) -> dict[str, torch.Tensor]:
    check_input_file(path, label="array file", error=DataError)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        # np.load takes anything that is not a zip archive or an .npy for a pickle, and refuses it
        # with advice to load it unsafely: say what the file is not instead.
        try:
            with open(path, "rb") as handle:
                start = handle.read(4)
        except OSError as exc:
            raise DataError(f"array file {path} cannot be opened: {exc.strerror or exc}") from None
        if start != b"PK\x03\x04":
            raise DataError(f"array file {path} is not an .npz archive (the zip file np.savez writes)")
        _require_npz_memory(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {key: torch.from_numpy(np.array(npz[key])) for key in npz.files}
        except ValueError as exc:
            # np.load refuses object (pickled) arrays when allow_pickle=False.
            raise DataError(f"array file {path}: {exc}") from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"array file {path} is not a readable .npz ({exc})") from None
        except TypeError as exc:
            raise DataError(f"array file {path} holds an array torch cannot use ({exc})") from None
    if suffix == ".pt":
        try:
            loaded = load_torch_file(path)
        except UnreadableTorchFile as exc:
            raise DataError(f"array file {path} is not a readable tensor file ({exc})") from None
        if not isinstance(loaded, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
        ):
            raise DataError(f"array file {path} must hold a dict of named tensors "
                            f"(x_train, y_train, ...), got {type(loaded).__name__}")
        return dict(loaded)
    raise ConfigError(f"array file {path} must end in .npz or .pt, got {suffix or 'no suffix'!r}")


def _require_npz_memory(path: Path) -> None:
    """Refuse an .npz whose arrays, decompressed, cannot fit in memory (a compressed archive can
    be far smaller than its arrays). Sizes come from the zip directory, before any array is
    read; each array is held twice at the peak (``np.array`` copies the loaded one)."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"array file {path} is not a readable .npz ({exc})") from None
    require_memory(f"array file {path}", what="its arrays, decompressed,", needed=2 * unpacked,
                   remedy="use a smaller file", error=DataError)


def _check_keys(path: Path, keys: set[str]) -> list[tuple[str, str, str]]:
    """``(split, x key, y key)`` for the splits in the file."""
    if keys & {"x", "y"}:
        if keys != {"x", "y"}:
            raise DataError(f"array file {path}: with 'x' and 'y' no other keys may be present, "
                            f"got {', '.join(sorted(keys))}")
        return [("train", "x", "y")]
    allowed = {f"{a}_{s}" for a in "xy" for s in SPLITS}
    if unknown := sorted(keys - allowed):
        raise DataError(f"array file {path}: unexpected key(s) {', '.join(unknown)}; expected "
                        "x_train, y_train (optionally x_val, y_val, x_test, y_test) or x, y")
    found = []
    for split in SPLITS:
        xk, yk = f"x_{split}", f"y_{split}"
        if (xk in keys) != (yk in keys):
            missing = yk if xk in keys else xk
            raise DataError(f"array file {path}: key {missing!r} is missing")
        if xk in keys:
            found.append((split, xk, yk))
    if not found or found[0][0] != "train":
        raise DataError(f"array file {path}: key 'x_train' is missing (or give 'x' and 'y')")
    return found


def load_arrays(path: Path) -> tuple[int, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The number of classes and the splits of an array file, images as uint8 NHWC."""
    arrays = _read_array_file(path)
    found = _check_keys(path, set(arrays))
    raw: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    label_keys = {split: yk for split, _, yk in found}
    shape: tuple[int, ...] | None = None
    for split, xk, yk in found:
        x, y = arrays[xk], arrays[yk]
        if x.dim() == 2:
            raise ConfigError(f"array file {path}: {xk!r} is N×F vectors {tuple(x.shape)}; only "
                              "images (N×C×H×W) are supported for now")
        if x.dim() != 4:
            raise DataError(f"array file {path}: {xk!r} must be N×C×H×W images, "
                            f"got {x.dim()} dimensions {tuple(x.shape)}")
        if shape is None:
            shape = tuple(x.shape[1:])
        elif tuple(x.shape[1:]) != shape:
            raise DataError(f"array file {path}: {xk!r} has images of C×H×W {tuple(x.shape[1:])}, "
                            f"x_train has {shape}")
        if x.shape[0] == 0:
            raise DataError(f"array file {path}: {xk!r} holds no images")
        if x.dtype == torch.bool or x.is_complex() or not (x.is_floating_point() or x.dtype in (
                torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
            raise DataError(f"array file {path}: {xk!r} has dtype {x.dtype}; expected uint8, "
                            "integer or float images")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise DataError(f"array file {path}: {xk!r} contains NaN or inf")
        if y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise DataError(f"array file {path}: {yk!r} must have shape ({x.shape[0]},) to match "
                            f"{xk!r}, got {tuple(y.shape)}")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise DataError(f"array file {path}: {yk!r} must hold integer labels, got {y.dtype}")
        raw[split] = (x, y.to(torch.int64))
    for split, (_, y) in raw.items():
        if int(y.min()) < 0:
            raise DataError(f"array file {path}: {label_keys[split]!r} has label {int(y.min())}; labels "
                            "are class indices 0..K-1")
    train_labels = raw["train"][1]
    num_classes = int(train_labels.max()) + 1
    if num_classes > train_labels.shape[0]:
        # Labels that are identifiers rather than indices (say 0, 10**9, 2·10**9) would ask for a
        # classifier head of 2·10**9 outputs, and most of those classes could never be learned.
        raise DataError(f"array file {path}: the largest training label is {num_classes - 1}, so the "
                        f"task would have {num_classes} classes, more than its {train_labels.shape[0]} "
                        "training images; labels must be class indices 0..K-1 (remap them, e.g. "
                        "with numpy.unique(y, return_inverse=True))")
    if num_classes < 2:
        raise DataError(f"array file {path}: the largest training label is {num_classes - 1}; "
                        "classification needs at least 2 classes")
    for split, (_, y) in raw.items():  # negative labels were refused above
        high = int(y.max())
        if high >= num_classes:
            raise DataError(f"array file {path}: {label_keys[split]!r} has label {high} "
                            f"outside 0..{num_classes - 1} "
                            "(the classes seen in the training labels)")
    return num_classes, {split: (_to_uint8_nhwc(path, raw, split), y) for split, (_, y) in raw.items()}


def _to_uint8_nhwc(path: Path, raw: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                   split: str) -> torch.Tensor:
    """One split's images as uint8 NHWC, with the value range judged over the whole file (so
    every split is scaled alike)."""
    low = min(float(x.min()) for x, _ in raw.values())
    high = max(float(x.max()) for x, _ in raw.values())
    floats = any(x.is_floating_point() for x, _ in raw.values())
    x = raw[split][0]
    if low < 0 or high > 255:
        raise DataError(f"array file {path}: image values lie in [{low:g}, {high:g}]; expected "
                        "uint8 0..255 or floats in [0, 1] or [0, 255] (normalise them back, "
                        "the task computes its own normalisation from the training split)")
    if floats and high <= 1:
        x = x.double() * 255  # [0, 1] floats: the common ToTensor() scaling
    return x.double().round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


# --- shared --------------------------------------------------------------------------------------


def carve_splits(
    task: str, splits: Mapping[str, tuple[torch.Tensor, torch.Tensor]], opts: ImageTaskOptions
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train, val and test: the missing ones carved from the training split after a shuffle
    seeded by ``data_seed``; then ``train_size`` keeps the head of the shuffled training split."""
    images, labels = splits["train"]
    n = int(labels.shape[0])
    gen = torch.Generator().manual_seed(stream_seed(opts.data_seed, _SPLIT_STREAM))
    order = torch.randperm(n, generator=gen)
    images, labels = images[order], labels[order]
    result: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    start = 0
    for split, fraction in (("val", opts.val_fraction), ("test", opts.test_fraction)):
        if split in splits:
            result[split] = splits[split]
            continue
        take = max(1, round(fraction * n))
        result[split] = (images[start:start + take], labels[start:start + take])
        start += take
    if n - start < 2:
        raise ConfigError(f"task {task!r}: the training split has {n} examples; carving "
                          f"val_fraction/test_fraction from it leaves {n - start} to train on "
                          "(need at least 2; add data or give val/test splits)")
    train = (images[start:], labels[start:])
    if opts.train_size is not None:
        if opts.train_size > n - start:
            raise ConfigError(f"task {task!r}: option 'train_size' is {opts.train_size} but the "
                              f"training split has only {n - start} examples")
        train = (train[0][: opts.train_size], train[1][: opts.train_size])
    result["train"] = train
    return result


def _make_task(task: str, opts: ImageTaskOptions, seed: int, device: str, num_classes: int,
               splits: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
               class_names: tuple[str, ...]) -> ImageTask:
    parts = carve_splits(task, splits, opts)
    data = ImageData(
        train_images=parts["train"][0], train_labels=parts["train"][1],
        val_images=parts["val"][0], val_labels=parts["val"][1],
        test_images=parts["test"][0], test_labels=parts["test"][1], num_classes=num_classes,
    )
    try:
        result = ImageTask(name=task, data=data, seed=seed, device=device,
                           batch_size=opts.batch_size, widths=opts.widths, augment=opts.augment,
                           epoch_size=opts.epoch_size)
    except ValueError as exc:
        raise ConfigError(f"task {task!r}: {exc}") from None
    # Exports record these: the folder names, or the label numbers of an array file.
    result.class_names = class_names
    return result


#: ``TaskSpec.read_options`` of ``imagefolder`` and ``arrays``.
read_imagefolder_options = functools.partial(read_image_task_options, "imagefolder", allowed=IMAGEFOLDER_OPTIONS,
                                             base=DEFAULT_OPTIONS)
read_arrays_options = functools.partial(read_image_task_options, "arrays", allowed=ARRAYS_OPTIONS,
                                        base=DEFAULT_OPTIONS)


def make_imagefolder_task(*, seed: int, device: str, options: Mapping[str, Any]) -> ImageTask:
    """TaskSpec factory of ``imagefolder`` (``--data DIR`` with ``train/CLASS/*``)."""
    opts = read_imagefolder_options(options=options)
    root = _need_path("imagefolder", opts, "an image folder")
    classes, splits = load_image_folder(root, opts.image_size)
    return _make_task("imagefolder", opts, seed, device, len(classes), splits, tuple(classes))


def make_arrays_task(*, seed: int, device: str, options: Mapping[str, Any]) -> ImageTask:
    """TaskSpec factory of ``arrays`` (``--data FILE.npz`` or ``FILE.pt``)."""
    opts = read_arrays_options(options=options)
    path = _need_path("arrays", opts, "an .npz or .pt file")
    num_classes, splits = load_arrays(path)
    return _make_task("arrays", opts, seed, device, num_classes, splits,
                      tuple(str(i) for i in range(num_classes)))
