from __future__ import annotations

import pytest
import torch

from esper_blueprints_cnn.tasks.procedural import (
    CLASSES,
    generate_shapes,
    make_shapes_task,
)


def test_same_seed_same_tensors_different_seed_different() -> None:
    x1, y1 = generate_shapes(200, seed=5)
    x2, y2 = generate_shapes(200, seed=5)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, y3 = generate_shapes(200, seed=6)
    assert not torch.equal(x1, x3)
    assert not torch.equal(y1, y3)


@pytest.mark.parametrize("size", [32, 16])
def test_images_do_not_depend_on_the_render_chunk(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    # Chunked rendering bounds memory; it must not change a dataset that runs depend on.
    from esper_blueprints_cnn.tasks import procedural

    whole = generate_shapes(300, seed=7, size=size)
    monkeypatch.setattr(procedural, "RENDER_CHUNK", 7)
    chunked = generate_shapes(300, seed=7, size=size)
    assert torch.equal(whole[0], chunked[0]) and torch.equal(whole[1], chunked[1])


def test_layout_balance_and_range() -> None:
    x, y = generate_shapes(500, seed=0)
    assert x.shape == (500, 32, 32, 3) and x.dtype == torch.uint8
    assert y.dtype == torch.int64
    assert torch.bincount(y, minlength=len(CLASSES)).tolist() == [50] * 10
    assert x.min() < 20 and x.max() > 235  # uses the whole range
    # Not degenerate: images differ from each other well beyond the noise.
    assert (x[0].float() - x[1].float()).abs().mean() > 10


def test_classes_differ_in_mean_image_statistics() -> None:
    """Striped shapes put less foreground on the canvas than solid ones: a crude check that the
    texture factor is really rendered."""
    x, y = generate_shapes(2000, seed=1)
    bg_corner = x[:, :2, :2].float().mean(dim=(1, 2))  # mostly background
    diff = (x.float() - bg_corner[:, None, None]).abs().mean(dim=(1, 2, 3))
    solid, striped = diff[y % 2 == 0].mean(), diff[y % 2 == 1].mean()
    assert solid > 1.2 * striped


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        generate_shapes(0, seed=0)


def test_task_splits_use_separate_streams() -> None:
    a = make_shapes_task(seed=0, device="cpu", options={"train_size": 64, "val_size": 32})
    b = make_shapes_task(seed=0, device="cpu", options={"train_size": 96, "val_size": 32})
    assert torch.equal(a._val, b._val)  # a bigger training split leaves validation alone
    c = make_shapes_task(seed=0, device="cpu",
                         options={"train_size": 64, "val_size": 32, "data_seed": 1})
    assert not torch.equal(a._val, c._val)
    d = make_shapes_task(seed=1, device="cpu", options={"train_size": 64, "val_size": 32})
    assert torch.equal(a._val, d._val)  # the run seed does not change the dataset


def test_the_held_out_test_split_is_its_own_stream() -> None:
    a = make_shapes_task(seed=0, device="cpu", options={"train_size": 64, "val_size": 32, "test_size": 40})
    b = make_shapes_task(seed=0, device="cpu", options={"train_size": 64, "val_size": 48, "test_size": 40})
    assert a.test_size == 40 and torch.equal(a._test, b._test)  # other splits leave it alone
    assert not torch.equal(a._test[:32], a._val)
    x, y = next(iter(a.test_batches()))
    assert x.shape == (40, 3, 32, 32) and y.shape == (40,)
    scores = a.correct_per_example(torch.nn.functional.one_hot(y, 10).float(), y)
    assert scores.shape == (40,) and bool((scores == 1).all())


def test_short_training_beats_chance_by_a_wide_margin() -> None:
    torch.manual_seed(0)
    task = make_shapes_task(
        seed=0, device="cpu", options={"train_size": 2000, "val_size": 500, "augment": False, "widths": [8, 16, 32]}
    )
    host = task.build_host()
    opt = torch.optim.AdamW(host.parameters(), lr=5e-3)
    for epoch in range(5):
        host.train()
        for x, y in task.train_batches(epoch=epoch):
            opt.zero_grad()
            task.loss(host(x), y).backward()
            opt.step()
    host.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in task.val_batches():
            c, n = task.correct(host(x), y)
            correct += int(c)
            total += n
    assert correct / total > 0.25  # chance is 0.10


def test_padded_images_are_the_same_images_in_a_zero_border() -> None:
    plain, labels = generate_shapes(40, seed=3)
    padded, padded_labels = generate_shapes(40, seed=3, padding=4)
    assert padded.shape == (40, 40, 40, 3) and torch.equal(labels, padded_labels)
    assert torch.equal(padded[:, 4:-4, 4:-4], plain)
    border = padded.clone()
    border[:, 4:-4, 4:-4] = 0
    assert not border.any()
    with pytest.raises(ValueError, match="padding >= 0"):
        generate_shapes(4, seed=0, padding=-1)


def test_tasks_hold_the_shared_dataset_without_a_copy() -> None:
    # A learned controller builds a task per episode: the process must hold one copy of the
    # images however many tasks there are, padded for the crop or not.
    options = {"train_size": 64, "val_size": 32, "test_size": 32}
    a = make_shapes_task(seed=0, device="cpu", options=options)
    b = make_shapes_task(seed=1, device="cpu", options=options)
    assert a._train.data_ptr() == b._train.data_ptr() and a._val.data_ptr() == b._val.data_ptr()
    assert a._train.shape == (64, 40, 40, 3)  # padded once, where it was generated
    plain = make_shapes_task(seed=0, device="cpu", options={**options, "augment": False})
    assert plain._train.shape == (64, 32, 32, 3)
    assert torch.equal(plain._train, a._train[:, 4:-4, 4:-4])
