"""The shared ImageTask: batching, augmentation, normalisation, host building, metrics."""

from __future__ import annotations

import pytest
import torch

from esper_blueprints_cnn.host import CNNHost
from esper_blueprints_cnn.tasks.base import CROP_PADDING, ImageData, ImageTask, stream_seed
from esper_blueprints_cnn.tasks.procedural import make_shapes_task
from esper_core.contracts.protocols import Task

SMALL = {"train_size": 300, "val_size": 130, "batch_size": 64}


@pytest.fixture(scope="module")
def task() -> ImageTask:
    return make_shapes_task(seed=7, device="cpu", options=SMALL)


def collect(batches) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*batches, strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_implements_the_task_protocol(task: ImageTask) -> None:
    assert isinstance(task, Task)
    assert (task.name, task.topology) == ("shapes", "cnn")
    assert (task.train_size, task.val_size) == (300, 130)
    assert "shapes" in repr(task)


def test_epoch_order_is_a_function_of_seed_and_epoch(task: ImageTask) -> None:
    x1, y1 = collect(task.train_batches(epoch=3))
    x2, y2 = collect(task.train_batches(epoch=3))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, _ = collect(task.train_batches(epoch=4))
    assert not torch.equal(x1, x3)
    other = make_shapes_task(seed=8, device="cpu", options=SMALL)
    assert not torch.equal(x1, collect(other.train_batches(epoch=3))[0])


def test_an_epoch_visits_every_example_once(task: ImageTask) -> None:
    x, y = collect(task.train_batches(epoch=0))
    assert x.shape == (300, 3, 32, 32) and x.dtype == torch.float32
    assert torch.equal(y.sort().values, task._train_labels.sort().values)
    sizes = [len(b[1]) for b in task.train_batches(epoch=0)]
    assert sizes == [64, 64, 64, 64, 44]


def test_trailing_singleton_batch_is_dropped() -> None:
    t = make_shapes_task(seed=0, device="cpu", options={**SMALL, "train_size": 129})
    assert [len(y) for _, y in t.train_batches(epoch=0)] == [64, 64]


def test_unaugmented_batches_are_the_normalised_images() -> None:
    t = make_shapes_task(seed=0, device="cpu", options={**SMALL, "augment": False})
    x, y = collect(t.train_batches(epoch=0))
    order = torch.randperm(300, generator=torch.Generator().manual_seed(stream_seed(0, 0)))
    raw = t._train[order].permute(0, 3, 1, 2).float()
    torch.testing.assert_close(x, (raw - t._mean) * t._inv_std)
    assert torch.equal(y, t._train_labels[order])


def test_augmented_images_are_shifted_or_flipped_crops(task: ImageTask) -> None:
    """Each augmented image equals one of the 9×9×2 padded crops/flips of its source."""
    order = torch.randperm(300, generator=torch.Generator().manual_seed(stream_seed(7, 2)))
    x, _ = next(iter(task.train_batches(epoch=2)))
    raw = x[:6] / task._inv_std + task._mean  # back to 0..255
    padded = task._train  # (N, 40, 40, 3), zero padded
    span = 2 * CROP_PADDING + 1
    flips_seen = set()
    for i in range(6):
        src = padded[order[i]].permute(2, 0, 1).float()
        crops = [
            (dy, dx, flip, src[:, dy : dy + 32, dx : dx + 32])
            for dy in range(span)
            for dx in range(span)
            for flip in (False, True)
        ]
        matches = [
            (dy, dx, flip)
            for dy, dx, flip, crop in crops
            if torch.allclose(raw[i], crop.flip(-1) if flip else crop, atol=1e-3)
        ]
        assert matches, f"sample {i} is not a crop of its source"
        flips_seen.add(matches[0][2])
    assert flips_seen == {False, True}


def test_normalisation_centres_the_data(task: ImageTask) -> None:
    x, _ = collect(task.val_batches())
    means = x.mean(dim=(0, 2, 3))
    stds = x.std(dim=(0, 2, 3))
    assert means.abs().max() < 0.15
    assert (stds - 1).abs().max() < 0.15


def test_val_batches_are_fixed_and_complete(task: ImageTask) -> None:
    x1, y1 = collect(task.val_batches())
    x2, y2 = collect(task.val_batches())
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert torch.equal(y1, task._val_labels)
    # 130 images: one batch, since validation batches are at least MIN_VAL_BATCH (256) long
    assert [len(y) for _, y in task.val_batches()] == [130]


def test_build_host_is_seeded_and_leaves_global_rng_alone(task: ImageTask) -> None:
    state = torch.random.get_rng_state()
    a, b = task.build_host(), task.build_host()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert isinstance(a, CNNHost) and a.injection_points[1].name == "block2"
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    other = make_shapes_task(seed=8, device="cpu", options=SMALL).build_host()
    assert not torch.equal(next(a.parameters()), next(other.parameters()))


def test_loss_and_correct(task: ImageTask) -> None:
    output = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0]])
    target = torch.tensor([0, 0, 0])
    correct, n = task.correct(output, target)
    assert isinstance(correct, torch.Tensor) and (correct.item(), n) == (2, 3)
    expected = torch.nn.functional.cross_entropy(output, target)
    torch.testing.assert_close(task.loss(output, target), expected)


def test_wide_hosts_run_channels_last_and_narrow_ones_contiguous() -> None:
    wide = make_shapes_task(seed=0, device="cpu", options={**SMALL, "widths": [16, 32]})
    assert wide.channels_last
    x, _ = next(iter(wide.train_batches(epoch=0)))
    assert x.is_contiguous(memory_format=torch.channels_last)
    host = wide.build_host()
    assert host.segments[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert host(x).shape == (64, 10)
    # The default shapes host (4/8/16) and micro's (8/16/32) train faster in NCHW (docs/memory_format.md).
    for widths in ([2, 3], [4, 8, 16], [8, 16, 32], [16, 8]):
        narrow = make_shapes_task(seed=0, device="cpu", options={**SMALL, "widths": widths})
        assert not narrow.channels_last
        assert next(iter(narrow.train_batches(epoch=0)))[0].is_contiguous()
        assert narrow.build_host().segments[0][0].weight.is_contiguous()


def test_image_data_checks_layout() -> None:
    good = torch.zeros(4, 8, 8, 3, dtype=torch.uint8)
    labels = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="uint8"):
        ImageData(train_images=good.float(), train_labels=labels, val_images=good,
                  val_labels=labels, test_images=good, test_labels=labels, num_classes=2)
    with pytest.raises(ValueError, match="labels"):
        ImageData(train_images=good, train_labels=labels, val_images=good,
                  val_labels=labels[:3], test_images=good, test_labels=labels, num_classes=2)
    with pytest.raises(ValueError, match="test images must be uint8"):
        ImageData(train_images=good, train_labels=labels, val_images=good,
                  val_labels=labels, test_images=good.float(), test_labels=labels, num_classes=2)


def test_stream_seed_mixes_its_parts() -> None:
    seeds = {stream_seed(s, e) for s in range(20) for e in range(20)}
    assert len(seeds) == 400
    assert all(0 <= s < 2**63 for s in seeds)
    assert stream_seed(1, 2) != stream_seed(2, 1)


def test_channel_stats_match_a_float64_copy_of_the_images() -> None:
    from esper_blueprints_cnn.tasks.base import channel_stats

    gen = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (50, 8, 8, 3), generator=gen, dtype=torch.uint8)
    images[..., 2] = 9  # a constant channel: its std is floored at 1
    mean, std = channel_stats(images)
    flat = images.reshape(-1, 3).to(torch.float64)
    assert torch.equal(mean, flat.mean(0).float().view(1, 3, 1, 1))
    assert torch.equal(std, flat.std(0).clamp_min(1.0).float().view(1, 3, 1, 1))
    assert std.flatten()[2] == 1.0


def test_input_contract_reproduces_the_task_input_from_raw_images(task: ImageTask) -> None:
    """An export's sidecar alone (shape, mean, std) turns a raw uint8 image into what the host saw."""
    from esper_blueprints_cnn.tasks.procedural import CLASSES

    contract = task.input_contract()
    assert contract["input"]["shape"] == [3, *task.image_size] and contract["input"]["dtype"] == "float32"
    assert contract["class_names"] == list(CLASSES) and contract["output"]["shape"] == [len(CLASSES)]
    norm = contract["normalisation"]
    mean = torch.tensor(norm["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(norm["std"]).view(1, -1, 1, 1)
    raw = task._val[:8]  # uint8 NHWC, as the dataset holds it
    x, _ = next(iter(task.val_batches()))
    assert torch.allclose((raw.permute(0, 3, 1, 2).float() - mean) / std, x[:8], atol=1e-4)


def test_a_task_without_class_names_says_none() -> None:
    images = torch.zeros(4, 8, 8, 1, dtype=torch.uint8)
    labels = torch.tensor([0, 1, 0, 1])
    data = ImageData(train_images=images, train_labels=labels, val_images=images, val_labels=labels,
                     test_images=images, test_labels=labels, num_classes=2)
    plain = ImageTask(name="plain", data=data, seed=0, device="cpu", batch_size=2, widths=(4, 8), augment=False)
    contract = plain.input_contract()
    assert contract["class_names"] is None and contract["input"]["shape"] == [1, 8, 8]


def test_pre_padded_training_images_give_the_same_task() -> None:
    # A dataset may come padded for the random crop (train_padding); the task must see the
    # same images, statistics and batches as from the unpadded images it would pad itself.
    from esper_blueprints_cnn.tasks.procedural import generate_shapes

    images, labels = generate_shapes(70, seed=2)
    padded, _ = generate_shapes(70, seed=2, padding=CROP_PADDING)

    def task_of(train: torch.Tensor, padding: int, augment: bool) -> ImageTask:
        data = ImageData(train_images=train, train_labels=labels, val_images=images, val_labels=labels,
                         test_images=images, test_labels=labels, num_classes=10, train_padding=padding)
        return ImageTask(name="t", data=data, seed=4, device="cpu", batch_size=16, widths=(4, 8),
                         augment=augment)

    for augment in (True, False):
        own, given = task_of(images, 0, augment), task_of(padded, CROP_PADDING, augment)
        assert given.image_size == own.image_size == (32, 32)
        assert torch.equal(given._mean, own._mean) and torch.equal(given._inv_std, own._inv_std)
        for (x1, y1), (x2, y2) in zip(own.train_batches(epoch=1), given.train_batches(epoch=1), strict=True):
            assert torch.equal(x1, x2) and torch.equal(y1, y2)
    with pytest.raises(ValueError, match="train_padding must be 0 or 4"):
        task_of(padded, 2, True)
