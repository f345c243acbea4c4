"""``shapes`` and ``micro``: the embedded procedural image tasks (no files, no network).

Ten classes = five shapes (disc, square, triangle, cross, ring) × two textures (solid,
striped). Each 32×32 RGB image has a random background colour with a linear gradient, a few
small clutter discs, and one shape with a random colour (kept in contrast with the
background), position, scale and rotation; stripes follow the shape's rotation, and Gaussian
pixel noise is added last. Images are rendered in chunks with batched tensor ops from a
seeded ``torch.Generator``, so the same seed always gives the same images.

The ``shapes`` default sizes are set so that an epoch of the default host takes about a second
on two CPU cores and the small default host plateaus clearly below a 4× wider one (see the
README). ``micro`` renders the same images at 16×16 and trains on 1,000 of them per epoch, drawn
afresh each epoch from a pool of 8,000, so that an epoch takes about 0.1 s on one CPU thread (see
:mod:`esper_blueprints_cnn.micro` for why each of its defaults).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from typing import Any

import structlog
import torch

from esper_blueprints_cnn.defaults import SHAPES_WIDTHS
from esper_blueprints_cnn.micro import (
    MICRO_AUGMENT,
    MICRO_EPOCH_SIZE,
    MICRO_IMAGE_SIZE,
    MICRO_TRAIN_SIZE,
    MICRO_VAL_SIZE,
    MICRO_WIDTHS,
)
from esper_blueprints_cnn.tasks.base import CROP_PADDING, ImageData, ImageTask, stream_seed
from esper_blueprints_cnn.tasks.options import ImageTaskOptions, read_image_task_options
from esper_core.errors import ConfigError
from esper_core.sdk import require_memory

logger = structlog.get_logger(__name__)

SHAPES = ("disc", "square", "triangle", "cross", "ring")
TEXTURES = ("solid", "striped")
CLASSES = tuple(f"{s}_{t}" for s in SHAPES for t in TEXTURES)
IMAGE_SIZE = 32
CLUTTER = 3

DEFAULT_TRAIN_SIZE = 3500
DEFAULT_VAL_SIZE = 2000
DEFAULT_TEST_SIZE = 2000
#: Options of both procedural tasks (``shapes`` and ``micro``).
ALLOWED_OPTIONS = frozenset(
    {"train_size", "val_size", "test_size", "epoch_size", "batch_size", "widths", "augment",
     "data_seed", "image_size"}
)
#: The default host: 4/8/16 channels (1,774 parameters), chosen from static runs (see
#: ``esper_blueprints_cnn.defaults.SHAPES_DEFAULTS``).
DEFAULT_OPTIONS = ImageTaskOptions(
    train_size=DEFAULT_TRAIN_SIZE, val_size=DEFAULT_VAL_SIZE, test_size=DEFAULT_TEST_SIZE,
    widths=SHAPES_WIDTHS,
)
#: ``micro``: see :mod:`esper_blueprints_cnn.micro` for the measurements behind each value.
MICRO_OPTIONS = ImageTaskOptions(
    train_size=MICRO_TRAIN_SIZE, val_size=MICRO_VAL_SIZE, epoch_size=MICRO_EPOCH_SIZE,
    test_size=MICRO_VAL_SIZE, widths=MICRO_WIDTHS, augment=MICRO_AUGMENT,
    image_size=MICRO_IMAGE_SIZE,
)


def _disc(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u * u + v * v <= 1.0


def _square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.maximum(u.abs(), v.abs()) <= 0.82


def _triangle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # Equilateral: inside all three half-planes n_k·p ≤ 0.55, outward normals 120° apart.
    inside = torch.ones_like(u, dtype=torch.bool)
    for k in range(3):
        a = -math.pi / 2 + 2 * math.pi * k / 3
        inside &= u * math.cos(a) + v * math.sin(a) <= 0.55
    return inside


def _cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    au, av = u.abs(), v.abs()
    return ((au <= 0.3) & (av <= 1.0)) | ((av <= 0.3) & (au <= 1.0))


def _ring(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r2 = u * u + v * v
    return (r2 <= 1.0) & (r2 >= 0.55**2)


#: Inside-tests in shape-local coordinates (unit ≈ circumradius), in the order of SHAPES.
_SHAPE_TESTS = (_disc, _square, _triangle, _cross, _ring)


#: Images rendered at a time. Rendering needs about 100 bytes per pixel of temporaries
#: (coordinates, layer indices, float colours): about 350 MB for the 3,500 default training
#: images at once, 6.5 MB in chunks of 64. Whatever the chunks' peak, the C allocator keeps
#: much of it after generation, so it adds to the whole run's peak memory; chunks of 64 are
#: also faster than 256 (0.47 s against 0.69 s for the default training set on one thread).
RENDER_CHUNK = 64


def generate_shapes(
    n: int, *, seed: int, size: int = IMAGE_SIZE, padding: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images as uint8 ``(n, size + 2 * padding, size + 2 * padding, 3)`` and balanced
    int64 labels in ``0..9``; ``padding`` zero pixels surround each ``size``-pixel image.

    A pure function of ``(n, seed, size, padding)``, and the padding never changes the images.
    Every image's random parameters are drawn first,
    then each chunk's pixel noise, and each chunk is rendered on its own. For even sizes the
    chunked noise is the same stream as one draw for every image (torch fills normals in
    blocks of 16), so the images do not depend on :data:`RENDER_CHUNK`. Layers (background,
    clutter, shape) are painted into a per-pixel layer index and resolved with one colour
    gather at the end. Chunks are rendered straight into the padded tensor, so padded images
    (the random crop's, see :class:`ImageData`) never exist unpadded as well.
    """
    if n < 1 or size < 4 or padding < 0:
        raise ValueError(f"need n >= 1, size >= 4 and padding >= 0, got n={n}, size={size}, padding={padding}")
    g = torch.Generator().manual_seed(seed)
    params = _draw_parameters(n, g)
    full = size + 2 * padding
    images = torch.zeros(n, full, full, 3, dtype=torch.uint8)
    inside = slice(padding, padding + size)
    for start in range(0, n, RENDER_CHUNK):
        chunk = slice(start, min(start + RENDER_CHUNK, n))
        m = chunk.stop - chunk.start
        noise = torch.randn((m, size, size, 3), generator=g)
        images[chunk, inside, inside] = _render({k: v[chunk] for k, v in params.items()}, noise, size)
    return images, params["labels"]


def _draw_parameters(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Every per-image random number of :func:`generate_shapes`, in a fixed order."""

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g)

    p: dict[str, torch.Tensor] = {"labels": torch.randperm(n, generator=g) % len(CLASSES)}
    palette = torch.zeros(n, CLUTTER + 2, 3)
    clutter = []
    # Clutter: small discs (much smaller than any shape) in random colours.
    for k in range(1, CLUTTER + 1):
        centre = rand(n, 2) * 2 - 1
        radius = 0.06 + 0.1 * rand(n)
        palette[:, k] = rand(n, 3)
        present = rand(n) < 0.8
        clutter.append(torch.cat([centre, radius[:, None], present[:, None].float()], 1))
    p["clutter"] = torch.stack(clutter, 1)  # (n, CLUTTER, [x, y, radius, present])
    # The shape: random centre, scale and rotation.
    p["centre"] = (rand(n, 2) * 2 - 1) * 0.4
    p["scale"] = 0.4 + 0.3 * rand(n)
    p["theta"] = rand(n) * 2 * math.pi
    p["freq"] = 2.5 + 1.5 * rand(n)
    p["phase"] = rand(n) * 2 * math.pi
    # Background: a random colour; the shape's colour is at least 0.3 away from it in every
    # channel, so the shape is always visible.
    p["bg"] = rand(n, 3)
    palette[:, CLUTTER + 1] = torch.remainder(p["bg"] + 0.3 + 0.4 * rand(n, 3), 1.0)
    p["palette"] = palette
    p["phi"] = rand(n) * 2 * math.pi
    p["amp"] = 0.25 * rand(n, 3) - 0.125
    p["sigma"] = 0.03 + 0.07 * rand(n)
    return p


def _render(p: dict[str, torch.Tensor], noise: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images of the parameters ``p`` (one chunk of :func:`_draw_parameters`)."""
    n = int(p["labels"].shape[0])
    shape, striped = p["labels"] // len(TEXTURES), p["labels"] % len(TEXTURES) == 1
    lin = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    ys, xs = lin.view(1, size, 1), lin.view(1, 1, size)
    layer = torch.zeros(n, size, size, dtype=torch.int64)  # 0 = background

    for k in range(1, CLUTTER + 1):
        cx, cy, radius, present = p["clutter"][:, k - 1].unbind(1)
        d2 = (xs - cx.view(n, 1, 1)).square_() + (ys - cy.view(n, 1, 1)).square_()
        layer.masked_fill_((d2 <= radius.view(n, 1, 1).square()) & (present > 0).view(n, 1, 1), k)

    # The shape in its local coordinates (u, v).
    centre, scale = p["centre"], p["scale"].view(n, 1, 1)
    cos, sin = torch.cos(p["theta"]).view(n, 1, 1), torch.sin(p["theta"]).view(n, 1, 1)
    dx, dy = xs - centre[:, 0].view(n, 1, 1), ys - centre[:, 1].view(n, 1, 1)
    u, v = (cos * dx + sin * dy).div_(scale), (cos * dy - sin * dx).div_(scale)
    inside = torch.empty(n, size, size, dtype=torch.bool)
    for k, test in enumerate(_SHAPE_TESTS):
        sel = (shape == k).nonzero().squeeze(1)
        inside[sel] = test(u[sel], v[sel])
    # Stripes in the shape's frame; the background shows through the gaps.
    freq, phase = p["freq"].view(n, 1, 1), p["phase"].view(n, 1, 1)
    stripe_on = torch.sin(u.mul_(freq * math.pi).add_(phase)) > 0
    layer.masked_fill_(inside & (stripe_on | ~striped.view(n, 1, 1)), CLUTTER + 1)

    # Background with a linear gradient in a random direction.
    ramp = torch.cos(p["phi"]).view(n, 1, 1) * xs + torch.sin(p["phi"]).view(n, 1, 1) * ys
    background = p["bg"].view(n, 1, 1, 3) + p["amp"].view(n, 1, 1, 3) * ramp.unsqueeze(-1)
    painted = p["palette"].gather(1, layer.view(n, -1, 1).expand(-1, -1, 3)).view(n, size, size, 3)
    img = torch.where((layer == 0).unsqueeze(-1), background, painted)
    img.add_(p["sigma"].view(n, 1, 1, 1) * noise)
    return img.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)


#: Bytes per image that :func:`generate_shapes` holds beside the pixels at its peak (every
#: image's drawn parameters and their temporaries): 300–380 measured from peak RSS over
#: 100,000–200,000 images at 16 and 32 pixels.
PARAMETER_BYTES_PER_IMAGE = 384


def shapes_bytes(n: int, *, size: int, padding: int) -> int:
    """Peak bytes of :func:`generate_shapes` for these arguments (the pixels it returns plus
    :data:`PARAMETER_BYTES_PER_IMAGE`)."""
    return n * ((size + 2 * padding) ** 2 * 3 + PARAMETER_BYTES_PER_IMAGE)


@functools.lru_cache(maxsize=6)  # three splits of each procedural task
def _shared_shapes(n: int, seed: int, size: int, padding: int, *, owner: str,
                   option: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`generate_shapes`, generated once per process: a learned controller builds a task
    for every episode (each episode's host and data order come from its own task seed) while
    the images depend only on ``data_seed``. Tasks never modify these tensors in place, and
    hold them without a copy (training images come padded for the random crop), so the
    process holds one copy of the dataset however many tasks it builds.

    A split that cannot fit in the memory available is refused before anything is drawn,
    naming ``option`` (the size option that set ``n``); a cached split is not checked again, as
    the memory it holds is no longer available."""
    require_memory(owner, what=f"{option}={n} images of {size}×{size} pixels",
                   needed=shapes_bytes(n, size=size, padding=padding),
                   remedy=f"lower {option} (or image_size)")
    return generate_shapes(n, seed=seed, size=size, padding=padding)


#: ``TaskSpec.read_options`` of ``shapes`` and ``micro``: their options, defaults filled in.
read_shapes_options = functools.partial(read_image_task_options, "shapes", allowed=ALLOWED_OPTIONS,
                                        base=DEFAULT_OPTIONS)
read_micro_options = functools.partial(read_image_task_options, "micro", allowed=ALLOWED_OPTIONS,
                                       base=MICRO_OPTIONS)


def _make_procedural_task(name: str, *, seed: int, device: str, opts: ImageTaskOptions) -> ImageTask:
    """An :class:`ImageTask` over :func:`generate_shapes` images. Train, validation and test
    images come from separate streams of ``data_seed``, so changing one size never changes
    another split and every run seed sees the same dataset; ``seed`` drives host init,
    shuffling and augmentation."""
    assert opts.train_size is not None and opts.val_size is not None and opts.test_size is not None
    if opts.epoch_size is not None and opts.epoch_size > opts.train_size:
        raise ConfigError(
            f"task {name!r}: option 'epoch_size' ({opts.epoch_size}) must not exceed "
            f"train_size ({opts.train_size})"
        )
    start = time.perf_counter()
    size = opts.image_size
    padding = CROP_PADDING if opts.augment else 0
    owner = f"task {name!r}"
    train_x, train_y = _shared_shapes(opts.train_size, stream_seed(opts.data_seed, 1), size, padding,
                                      owner=owner, option="train_size")
    val_x, val_y = _shared_shapes(opts.val_size, stream_seed(opts.data_seed, 2), size, 0,
                                  owner=owner, option="val_size")
    test_x, test_y = _shared_shapes(opts.test_size, stream_seed(opts.data_seed, 3), size, 0,
                                    owner=owner, option="test_size")
    logger.debug(
        "shapes generated",
        task=name,
        train=opts.train_size,
        val=opts.val_size,
        test=opts.test_size,
        size=size,
        seconds=round(time.perf_counter() - start, 3),
    )
    data = ImageData(
        train_images=train_x, train_labels=train_y, val_images=val_x, val_labels=val_y,
        test_images=test_x, test_labels=test_y, num_classes=len(CLASSES), train_padding=padding,
    )
    task = ImageTask(
        name=name, data=data, seed=seed, device=device, batch_size=opts.batch_size,
        widths=opts.widths, augment=opts.augment, epoch_size=opts.epoch_size,
    )
    task.class_names = CLASSES
    return task


def make_shapes_task(*, seed: int, device: str, options: Mapping[str, Any]) -> ImageTask:
    """TaskSpec factory of ``shapes`` (``data_seed`` default 0)."""
    return _make_procedural_task("shapes", seed=seed, device=device, opts=read_shapes_options(options=options))


def make_micro_task(*, seed: int, device: str, options: Mapping[str, Any]) -> ImageTask:
    """TaskSpec factory of ``micro``: the same images at 16×16, 1,000 per epoch drawn from a
    pool of 8,000, 500 for validation (see :mod:`esper_blueprints_cnn.micro` for why)."""
    return _make_procedural_task("micro", seed=seed, device=device, opts=read_micro_options(options=options))
