"""The Crucible's micro-curriculum for ``cnn`` blueprints (``esper discover``): three tiny
classification tasks generated on the fly, declared through ``TopologySpec.crucible_tasks``.

Each task presents the candidate an image-shaped slot ``(C, H, W)``, so one blueprint is scored
on all of them: XOR as a 1×1 "image", a temporal pattern as a 1×T strip, a tiny image task as
8×8. Data come from a ``torch.Generator`` seeded by the task seed: the same seed gives the same
tensors on every run. Nothing is downloaded.

* ``xor``: trained on the four ±1 corners, scored on noisy points around them (label: the
  signs differ), the classic non-linear toy.
* ``temporal``: a length-16 noise sequence with one of three motifs planted at a random place;
  the motifs are the permutations of (+1, +1, −1), so only a model that sees order (a kernel
  wider than 1 along time) beats chance (1/3). The stem is a 1×1 conv, so that is the candidate.
* ``image``: 8×8 noisy bars (horizontal, vertical, diagonal, anti-diagonal), 4 classes. Every
  bar has 8 pixels and the stem is a 1×1 conv, so telling them apart needs a spatial kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from esper_core.sdk import CrucibleTask, ToSpatial, TrainData


def _xor_data(seed: int) -> TrainData:
    g = torch.Generator().manual_seed(seed)

    def sample(n: int) -> tuple[Tensor, Tensor]:
        signs = torch.randint(0, 2, (n, 2), generator=g).float() * 2 - 1
        x = signs + 0.25 * torch.randn(n, 2, generator=g)
        return x, (signs[:, 0] * signs[:, 1] < 0).long()

    # Train on the four corners (the classic XOR), evaluate on noisy points around them.
    corners = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    xe, ye = sample(256)
    return TrainData(x_train=corners, y_train=torch.tensor([0, 1, 1, 0]), x_eval=xe, y_eval=ye,
                        x_probe=xe[:32])


_MOTIFS = torch.tensor([[1.0, 1.0, -1.0], [1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]])
SEQUENCE_LENGTH = 16


def _temporal_data(seed: int) -> TrainData:
    g = torch.Generator().manual_seed(seed)

    def sample(n: int) -> tuple[Tensor, Tensor]:
        x = 0.3 * torch.randn(n, SEQUENCE_LENGTH, generator=g)
        y = torch.randint(0, len(_MOTIFS), (n,), generator=g)
        start = torch.randint(0, SEQUENCE_LENGTH - 3 + 1, (n,), generator=g)
        idx = start[:, None] + torch.arange(3)
        x.scatter_(1, idx, _MOTIFS[y] * 1.5)
        return x[:, None, None, :], y  # (N, 1, 1, T)

    x, y = sample(128)
    xe, ye = sample(256)
    return TrainData(x_train=x, y_train=y, x_eval=xe, y_eval=ye, x_probe=xe[:32])


IMAGE_SIZE = 8


def _image_data(seed: int) -> TrainData:
    g = torch.Generator().manual_seed(seed)
    s = IMAGE_SIZE
    eye = torch.eye(s)
    patterns = torch.stack([torch.zeros(s, s), torch.zeros(s, s), eye, eye.flip(1)])

    def sample(n: int) -> tuple[Tensor, Tensor]:
        y = torch.randint(0, 4, (n,), generator=g)
        pos = torch.randint(0, s, (n,), generator=g)
        images = patterns[y].clone()
        rows = (y == 0).nonzero().flatten()
        images[rows, pos[rows], :] = 1.0
        cols = (y == 1).nonzero().flatten()
        images[cols, :, pos[cols]] = 1.0
        images = images + 0.3 * torch.randn(n, s, s, generator=g)
        return images[:, None], y

    x, y = sample(64)
    xe, ye = sample(256)
    return TrainData(x_train=x, y_train=y, x_eval=xe, y_eval=ye, x_probe=xe[:32])


def _xor_stem(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(2, width), ToSpatial(2))


def _temporal_stem(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 1))


def _image_stem(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 1))


def crucible_tasks() -> list[CrucibleTask]:
    """The curriculum, easiest first (the Architect's default order)."""
    return [
        CrucibleTask(name="xor", description="noisy XOR of two ±1 inputs (1×1 slot)", width=16,
                     slot_spatial=(1, 1), n_classes=2, steps=100, lr=0.03, make_data=_xor_data,
                     make_stem=_xor_stem),
        CrucibleTask(name="temporal", description="which ordered motif is in a noisy sequence (1×16 slot)",
                     width=8, slot_spatial=(1, SEQUENCE_LENGTH), n_classes=3, steps=100, lr=0.02,
                     make_data=_temporal_data, make_stem=_temporal_stem),
        CrucibleTask(name="image", description="orientation of a noisy bar in an 8×8 image (8×8 slot)",
                     width=8, slot_spatial=(IMAGE_SIZE, IMAGE_SIZE), n_classes=4, steps=100, lr=0.02,
                     make_data=_image_data, make_stem=_image_stem),
    ]
