"""The one image-task implementation behind every CNN task (the Task protocol, DESIGN §5).

Images stay uint8 on the task's device in NHWC order. A training batch is one gather: the
random 4-pixel-padded crop and horizontal flip (the standard CIFAR augmentation of He et al.
2016) become per-sample row/column index grids into the pre-padded images, so there is no
per-image Python or PIL work. Gathering NHWC and viewing it as NCHW yields a channels-last
tensor for free; it is made contiguous only when the host runs in the default format.
Normalisation is one fused subtract-multiply on the float batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from attrs import field, frozen

from esper_blueprints_cnn.host import CNNHost, HostConfig
from esper_core.sdk import TRAINED_BYTES_PER_PARAMETER, require_memory

#: Zero padding of the random crop (pixels on each side).
CROP_PADDING = 4
#: Smallest validation batch. Evaluation takes no optimizer step, so its batch size is only a
#: throughput choice (BatchNorm uses running statistics in eval mode): on one CPU thread the
#: default host validates 6,400 images 1.13× faster in batches of 256 than of 32.
MIN_VAL_BATCH = 256
_MASK64 = (1 << 64) - 1


def stream_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (SplitMix64 finaliser), e.g. ``(seed, epoch)``."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (part & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK64
        x ^= x >> 31
    return x >> 1


@frozen(kw_only=True, eq=False)
class ImageData:
    """uint8 images ``(N, H, W, C)`` with int64 labels, for training, validation and test.

    The validation split is what controllers and gates see every epoch; the test split is held
    out from both and measured once, at the end of an episode (``test_accuracy``).

    ``train_padding`` is 0, or :data:`CROP_PADDING` when the training images already carry the
    random crop's zero border: a task that augments then holds them as they are instead of a
    padded copy (a dataset kept for many tasks, like the procedural ones, is kept padded)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int = field()
    train_padding: int = field(default=0)

    @train_padding.validator
    def _check_padding(self, _attribute: object, value: int) -> None:
        if value not in (0, CROP_PADDING):
            raise ValueError(f"train_padding must be 0 or {CROP_PADDING}, got {value}")

    @property
    def train_interior(self) -> torch.Tensor:
        """The training images without their padding (a view)."""
        p = self.train_padding
        return self.train_images[:, p:-p, p:-p] if p else self.train_images

    def __attrs_post_init__(self) -> None:
        for name in ("train", "val", "test"):
            images = getattr(self, f"{name}_images")
            labels = getattr(self, f"{name}_labels")
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise ValueError(
                    f"{name} images must be uint8 (N, H, W, C), "
                    f"got {images.dtype} {tuple(images.shape)}"
                )
            if labels.shape != (images.shape[0],):
                raise ValueError(
                    f"{name} labels must have shape ({images.shape[0]},), "
                    f"got {tuple(labels.shape)}"
                )


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (sample) std of uint8 NHWC images, in 0–255 units, shaped
    ``(1, C, 1, 1)``.

    From each channel's 256-bin histogram, in float64: the same float32 figures as a float64
    copy of the images (checked on the procedural datasets), without the copy — 8 bytes per
    pixel, 86 MB for the default training set, which set the run's peak memory.
    """
    values = torch.arange(256, dtype=torch.float64, device=images.device)
    means, stds = [], []
    for channel in images.unbind(-1):
        counts = torch.bincount(channel.reshape(-1), minlength=256).to(torch.float64)
        n = counts.sum()
        mean = (counts * values).sum() / n
        means.append(mean)
        stds.append(((counts * (values - mean).square()).sum() / (n - 1)).sqrt())
    mean, std = torch.stack(means), torch.stack(stds).clamp_min(1.0)
    return mean.float().view(1, -1, 1, 1), std.float().view(1, -1, 1, 1)


#: The narrowest block a host may have and still run channels-last.
CHANNELS_LAST_MIN_WIDTH = 16


def prefers_channels_last(device: torch.device, widths: tuple[int, ...]) -> bool:
    """Whether the host should run channels-last: when every block is at least
    :data:`CHANNELS_LAST_MIN_WIDTH` channels wide. Measured by ``benchmarks/memory_format.py``
    (docs/memory_format.md; 2 CPU threads, oneDNN): channels-last trains the 16/32/64 and
    32/64/128 hosts faster per step, and the default ``shapes`` host (4/8/16), ``micro``'s
    (8/16/32) and every other host with a block of 8 channels or fewer slower, at every batch
    size measured. There BatchNorm's channels-last kernels are the cost: at 4 channels its
    forward takes about ten times as long as in NCHW. cuDNN prefers NHWC too. Channels-last spares the
    pipeline a copy, since the NHWC gather already is a channels-last batch; NCHW pays it."""
    return min(widths) >= CHANNELS_LAST_MIN_WIDTH


class ImageTask:
    """A classification task over :class:`ImageData` (implements the Task protocol)."""

    topology = "cnn"
    #: Names of the classes in label order, when the dataset has them (exports record them).
    class_names: tuple[str, ...] | None = None

    def __init__(
        self,
        *,
        name: str,
        data: ImageData,
        seed: int,
        device: str | torch.device,
        batch_size: int,
        widths: tuple[int, ...],
        augment: bool,
        epoch_size: int | None = None,
    ) -> None:
        n_train = int(data.train_labels.shape[0])
        if epoch_size is not None and not 1 <= epoch_size <= n_train:
            raise ValueError(
                f"epoch_size must be between 1 and the {n_train} training images, got {epoch_size}"
            )
        self.name = name
        self.seed = seed
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.augment = augment
        self.num_classes = data.num_classes
        self.host_config = HostConfig(
            widths=widths, num_classes=data.num_classes, in_channels=data.train_images.shape[-1]
        )
        self.channels_last = prefers_channels_last(self.device, self.host_config.widths)
        interior = data.train_interior
        mean, std = channel_stats(interior)
        self._mean = mean.to(self.device)
        self._inv_std = std.reciprocal().to(self.device)
        p = CROP_PADDING
        if augment:
            # Pad once (here, or where the data was made) rather than per batch; the crop is
            # then a plain gather.
            train = data.train_images.to(self.device)
            self._train = train if data.train_padding else F.pad(train, (0, 0, p, p, p, p))
        else:
            self._train = interior.to(self.device).contiguous()
        # One row per pixel: a crop is then a single index_select of precomputed pixel offsets,
        # 3.6x faster than advanced indexing with three broadcast index tensors (~100 vs ~380 us
        # for a batch of 32 on one thread).
        self._train_pixels = self._train.view(-1, self._train.shape[-1])
        self._train_labels = data.train_labels.to(self.device, torch.int64)
        self._val = data.val_images.to(self.device)
        self._val_labels = data.val_labels.to(self.device, torch.int64)
        self._test = data.test_images.to(self.device)
        self._test_labels = data.test_labels.to(self.device, torch.int64)
        self.image_size = (interior.shape[1], interior.shape[2])
        #: Training images per epoch: ``None`` is one pass over the training set; fewer draws
        #: each epoch a fresh subset (the head of that epoch's permutation) from the set as a pool.
        self.epoch_size = epoch_size

    # --- sizes -------------------------------------------------------------------------------

    @property
    def train_size(self) -> int:
        return int(self._train_labels.shape[0])

    @property
    def val_size(self) -> int:
        return int(self._val_labels.shape[0])

    # --- Task protocol -----------------------------------------------------------------------

    def build_host(self) -> CNNHost:
        """A fresh host on the task's device, initialised from the task seed (without touching
        the global RNG), so a run and its no-seed baseline start from the same weights."""
        cfg = self.host_config
        require_memory(f"task {self.name!r}", what=f"a host of widths {','.join(map(str, cfg.widths))} "
                       f"({cfg.parameter_count:,} parameters, trained with Adam)",
                       needed=TRAINED_BYTES_PER_PARAMETER * cfg.parameter_count, remedy="lower widths")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(self.seed, 0x4057))
            host = CNNHost(cfg)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        # Module.to takes device and memory_format together; torch's overloads leave that out.
        return host.to(device=self.device, memory_format=fmt)  # type: ignore[call-overload]

    def train_batches(self, *, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled (and, if enabled, augmented) batches; the order, the subset of the training
        set used (with ``epoch_size``) and the augmentation are a pure function of
        ``(seed, epoch)``. A trailing batch of one is dropped (BatchNorm needs two samples to
        train)."""
        b = self.batch_size
        gen = torch.Generator().manual_seed(stream_seed(self.seed, epoch))
        order = torch.randperm(self.train_size, generator=gen)
        if self.epoch_size is not None:
            order = order[: self.epoch_size]
        n = int(order.shape[0])
        order = order.to(self.device, non_blocking=True)
        if self.augment:
            h, w = self.image_size
            span = 2 * CROP_PADDING + 1
            top = torch.randint(0, span, (n,), generator=gen).to(self.device, non_blocking=True)
            left = torch.randint(0, span, (n,), generator=gen).to(self.device, non_blocking=True)
            flip = torch.rand(n, generator=gen).lt(0.5).to(self.device, non_blocking=True)
            padded_h, padded_w = self._train.shape[1], self._train.shape[2]
            rows = torch.arange(h, device=self.device) * padded_w
            cols = torch.arange(w, device=self.device)
            # Row offsets of each image's crop origin; ``left``/``flip`` choose the columns.
            origin = (order * padded_h + top) * padded_w
        for start in range(0, n, b):
            stop = min(start + b, n)
            if stop - start < 2:
                break
            idx = order[start:stop]
            if self.augment:
                r = origin[start:stop, None] + rows  # (B, H) offsets of the source rows
                c = torch.where(flip[start:stop, None], cols.flip(0), cols) + left[start:stop, None]
                pixels = (r[:, :, None] + c[:, None, :]).view(-1)
                images = self._train_pixels.index_select(0, pixels).view(stop - start, h, w, -1)
            else:
                images = self._train[idx]
            yield self._to_input(images), self._train_labels[idx]

    @property
    def test_size(self) -> int:
        return int(self._test_labels.shape[0])

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The validation set in fixed order, un-augmented, in batches of at least
        ``MIN_VAL_BATCH``."""
        return self._fixed_batches(self._val, self._val_labels)

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The held-out test set (never seen by a controller or a gate), like validation."""
        return self._fixed_batches(self._test, self._test_labels)

    def _fixed_batches(self, images: torch.Tensor,
                       labels: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        b = max(self.batch_size, MIN_VAL_BATCH)
        for start in range(0, int(labels.shape[0]), b):
            stop = start + b
            yield self._to_input(images[start:stop]), labels[start:stop]

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def correct(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
        return (output.argmax(dim=1) == target).sum(), int(target.numel())

    def correct_per_example(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """1.0 where the prediction is right, else 0.0 (the gates' paired statistics)."""
        return (output.argmax(dim=1) == target).float()

    def input_contract(self) -> dict[str, Any]:
        """What the host takes, for exports: a normalised float NCHW image and its recipe."""
        channels, (height, width) = self.host_config.in_channels, self.image_size
        return {
            "input": {"shape": [channels, height, width], "dtype": "float32", "layout": "NCHW"},
            "normalisation": {
                "from": f"uint8 image of shape ({height}, {width}, {channels}) (HWC), values 0-255",
                "steps": "permute HWC to CHW, convert to float32, subtract mean, divide by std (per channel)",
                "mean": [round(float(v), 6) for v in self._mean.flatten().cpu()],
                "std": [round(float(v), 6) for v in self._inv_std.reciprocal().flatten().cpu()],
            },
            "output": {"shape": [self.num_classes], "meaning": "class logits (argmax is the prediction)"},
            "class_names": list(self.class_names) if self.class_names is not None else None,
        }

    # --- helpers -----------------------------------------------------------------------------

    def _to_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC → normalised float NCHW (a channels-last view unless the host wants NCHW)."""
        x = images.permute(0, 3, 1, 2).float().sub_(self._mean).mul_(self._inv_std)
        return x if self.channels_last else x.contiguous()

    def __repr__(self) -> str:
        return (
            f"ImageTask(name={self.name!r}, train={self.train_size}"
            + (f" ({self.epoch_size} per epoch)" if self.epoch_size is not None else "")
            + f", val={self.val_size}, test={self.test_size}, "
            f"batch_size={self.batch_size}, widths={self.host_config.widths}, device={self.device})"
        )
