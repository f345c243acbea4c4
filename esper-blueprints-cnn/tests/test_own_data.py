"""``imagefolder`` and ``arrays`` on small real files written per test (PNG via PIL, .npz, .pt)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from esper_blueprints_cnn.tasks.own_data import make_arrays_task, make_imagefolder_task
from esper_core import memory
from esper_core.errors import ConfigError, DataError
from esper_core.testing.distributions import run_esper

CLASSES = ("cat", "dog", "fox")
SMALL = {"batch_size": 8, "widths": [4, 8]}


def write_pngs(root: Path, split: str, per_class: int, classes: tuple[str, ...] = CLASSES,
               size: int = 10) -> None:
    rng = np.random.default_rng(len(split) * 7 + per_class)
    for k, name in enumerate(classes):
        folder = root / split / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (size, size + 2, 3), dtype=np.uint8) + np.uint8(60 * k)
            Image.fromarray(pixels).save(folder / f"{i}.png")


def fake_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 3, n)
    x = rng.random((n, 3, 8, 8), dtype=np.float32) * 0.3 + y[:, None, None, None] * 0.3
    return x, y


def all_labels(batches) -> torch.Tensor:
    return torch.cat([y for _, y in batches])


# --- imagefolder ---------------------------------------------------------------------------------


def test_imagefolder_reads_classes_and_carves_splits_deterministically(tmp_path: Path) -> None:
    write_pngs(tmp_path, "train", 10)
    opts = {"path": str(tmp_path), "image_size": 8, "val_fraction": 0.2, "test_fraction": 0.1, **SMALL}
    task = make_imagefolder_task(seed=0, device="cpu", options=opts)
    assert task.class_names == CLASSES and task.num_classes == 3
    assert (task.train_size, task.val_size, task.test_size) == (21, 6, 3)
    x, _ = next(iter(task.val_batches()))
    assert x.shape == (6, 3, 8, 8)
    again = make_imagefolder_task(seed=1, device="cpu", options=opts)
    assert torch.equal(all_labels(task.val_batches()), all_labels(again.val_batches()))
    assert torch.equal(task._train, again._train)
    other = make_imagefolder_task(seed=0, device="cpu", options={**opts, "data_seed": 5})
    assert not torch.equal(task._val, other._val)


def test_imagefolder_uses_given_splits(tmp_path: Path) -> None:
    write_pngs(tmp_path, "train", 4)
    write_pngs(tmp_path, "val", 2)
    write_pngs(tmp_path, "test", 1)
    task = make_imagefolder_task(seed=0, device="cpu", options={"path": str(tmp_path), **SMALL})
    assert (task.train_size, task.val_size, task.test_size) == (12, 6, 3)
    assert sorted(all_labels(task.test_batches()).tolist()) == [0, 1, 2]


def test_imagefolder_refuses_mismatched_classes(tmp_path: Path) -> None:
    write_pngs(tmp_path, "train", 2)
    write_pngs(tmp_path, "val", 1, classes=("cat", "dog", "owl"))
    with pytest.raises(DataError, match="val/ has different classes.*missing: fox; extra: owl"):
        make_imagefolder_task(seed=0, device="cpu", options={"path": str(tmp_path)})


def test_imagefolder_names_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    write_pngs(tmp_path, "train", 2)
    (tmp_path / "train" / "dog" / ".DS_Store").write_bytes(b"\0hidden files are skipped")
    bad = tmp_path / "train" / "dog" / "notes.txt"
    bad.write_text("not an image")
    with pytest.raises(DataError, match=f"{bad}.* is not a readable image"):
        make_imagefolder_task(seed=0, device="cpu", options={"path": str(tmp_path)})


def test_imagefolder_refuses_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--data"):
        make_imagefolder_task(seed=0, device="cpu", options={})
    with pytest.raises(DataError, match="does not exist"):
        make_imagefolder_task(seed=0, device="cpu", options={"path": str(tmp_path / "nowhere")})
    with pytest.raises(DataError, match="no train/ folder"):
        make_imagefolder_task(seed=0, device="cpu", options={"path": str(tmp_path)})
    write_pngs(tmp_path, "train", 1, classes=("only",))
    with pytest.raises(DataError, match="at least 2 classes"):
        make_imagefolder_task(seed=0, device="cpu", options={"path": str(tmp_path)})


def test_special_files_are_refused_before_they_are_opened(tmp_path: Path) -> None:
    import os

    # a named pipe among the images, or as the array file, once blocked the run forever
    write_pngs(tmp_path, "train", 2)
    pipe = tmp_path / "train" / "dog" / "stuck.png"
    os.mkfifo(pipe)
    with pytest.raises(DataError, match=rf"image '{pipe}' is not a regular file \(a named pipe\)"):
        make_imagefolder_task(seed=0, device="cpu", options={"path": str(tmp_path)})
    for suffix in (".npz", ".pt"):
        array_pipe = tmp_path / f"pipe{suffix}"
        os.mkfifo(array_pipe)
        with pytest.raises(DataError, match=rf"array file '{array_pipe}' is not a regular file \(a named pipe\)"):
            make_arrays_task(seed=0, device="cpu", options={"path": str(array_pipe)})
    with pytest.raises(DataError, match=r"array file '.*missing.npz' does not exist"):
        make_arrays_task(seed=0, device="cpu", options={"path": str(tmp_path / "missing.npz")})


def test_too_little_data_to_carve_is_refused(tmp_path: Path) -> None:
    write_pngs(tmp_path, "train", 1)
    with pytest.raises(ConfigError, match="leaves 1 to train on"):
        make_imagefolder_task(seed=0, device="cpu", options={"path": str(tmp_path)})


# --- arrays --------------------------------------------------------------------------------------


def test_arrays_npz_with_all_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (xt, yt), (xv, yv), (xs, ys) = fake_images(30, rng), fake_images(9, rng), fake_images(6, rng)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=xt, y_train=yt, x_val=xv, y_val=yv, x_test=xs, y_test=ys)
    task = make_arrays_task(seed=0, device="cpu", options={"path": str(path), **SMALL})
    assert (task.train_size, task.val_size, task.test_size, task.num_classes) == (30, 9, 6, 3)
    assert task.class_names == ("0", "1", "2")
    # [0, 1] floats become 0..255 uint8 NHWC; the validation split is kept as given.
    expected = torch.from_numpy(xv * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    assert torch.equal(task._val, expected)
    # Normalisation comes from the training split alone.
    train_u8 = torch.from_numpy(xt * 255).round()
    assert torch.allclose(task._mean.flatten(), train_u8.mean(dim=(0, 2, 3)).float(), atol=1e-3)


def test_arrays_pt_with_x_y_is_carved(tmp_path: Path) -> None:
    x = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    y = torch.arange(40) % 4
    path = tmp_path / "data.pt"
    torch.save({"x": x, "y": y}, path)
    opts = {"path": str(path), "train_size": 20, **SMALL}
    task = make_arrays_task(seed=0, device="cpu", options=opts)
    assert (task.train_size, task.val_size, task.test_size, task.num_classes) == (20, 4, 4, 4)
    again = make_arrays_task(seed=0, device="cpu", options=opts)
    assert torch.equal(task._val, again._val) and torch.equal(task._test, again._test)
    assert task.build_host()(next(iter(task.val_batches()))[0]).shape == (4, 4)


def _npz(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


GOOD_X = np.zeros((6, 3, 8, 8), dtype=np.uint8)
GOOD_Y = np.array([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize(
    ("arrays", "error", "message"),
    [
        ({"x_train": GOOD_X}, DataError, "key 'y_train' is missing"),
        ({"x_val": GOOD_X, "y_val": GOOD_Y}, DataError, "key 'x_train' is missing"),
        ({"x": GOOD_X, "y": GOOD_Y, "x_val": GOOD_X}, DataError, "no other keys"),
        ({"x_train": GOOD_X, "y_train": GOOD_Y, "x_tset": GOOD_X}, DataError, "unexpected key.*x_tset"),
        ({"x": GOOD_X, "y": GOOD_Y[:5]}, DataError, r"'y' must have shape \(6,\)"),
        ({"x": GOOD_X, "y": GOOD_Y - 1}, DataError, "'y' has label -1; labels are class indices"),
        ({"x_train": GOOD_X, "y_train": GOOD_Y, "x_val": GOOD_X, "y_val": GOOD_Y - 2},
         DataError, "'y_val' has label -2; labels are class indices"),
        # identifiers, not indices: refused before a head of 2·10**9 outputs is allocated
        ({"x": GOOD_X, "y": GOOD_Y * 10**9}, DataError,
         "largest training label is 2000000000, so the task would have 2000000001 classes, "
         "more than its 6 training images"),
        ({"x_train": GOOD_X, "y_train": GOOD_Y, "x_val": GOOD_X, "y_val": GOOD_Y + 1},
         DataError, "'y_val' has label 3 outside 0..2"),
        ({"x": GOOD_X, "y": GOOD_Y.astype(np.float32)}, DataError, "integer labels"),
        ({"x": np.full((6, 3, 8, 8), np.nan, np.float32), "y": GOOD_Y}, DataError, "NaN or inf"),
        ({"x": GOOD_X.astype(np.float32) - 0.5, "y": GOOD_Y}, DataError, r"values lie in \[-0.5"),
        ({"x": GOOD_X[:, 0], "y": GOOD_Y}, DataError, "N×C×H×W images, got 3 dimensions"),
        ({"x": np.zeros((6, 5), np.float32), "y": GOOD_Y}, ConfigError, "only images.*supported"),
        ({"x_train": GOOD_X, "y_train": GOOD_Y, "x_val": GOOD_X[:, :1], "y_val": GOOD_Y},
         DataError, "'x_val' has images of C×H×W"),
    ],
)
def test_malformed_arrays_are_refused(tmp_path: Path, arrays: dict, error: type, message: str) -> None:
    path = _npz(tmp_path, **arrays)
    with pytest.raises(error, match=message):
        make_arrays_task(seed=0, device="cpu", options={"path": str(path)})


def test_unreadable_array_files_are_refused(tmp_path: Path) -> None:
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, x=np.array([object()] * 6, dtype=object), y=GOOD_Y)
    with pytest.raises(DataError, match="allow_pickle"):
        make_arrays_task(seed=0, device="cpu", options={"path": str(pickled)})
    not_pt = tmp_path / "junk.pt"
    not_pt.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not a readable tensor file"):
        make_arrays_task(seed=0, device="cpu", options={"path": str(not_pt)})
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], listed)
    with pytest.raises(DataError, match="dict of named tensors"):
        make_arrays_task(seed=0, device="cpu", options={"path": str(listed)})
    csv = tmp_path / "data.csv"
    csv.write_text("1,2")
    with pytest.raises(ConfigError, match=r"must end in \.npz or \.pt"):
        make_arrays_task(seed=0, device="cpu", options={"path": str(csv)})


@pytest.mark.parametrize("content", [b"x_train,y_train\n1,2\n", bytes(range(256)) * 8, b""],
                         ids=["text", "random bytes", "empty"])
@pytest.mark.parametrize("suffix", [".npz", ".pt"])
def test_an_array_file_that_is_not_one_is_named_as_such(tmp_path: Path, content: bytes, suffix: str) -> None:
    # numpy reads such a file as a pickle and advises loading it unsafely; torch raises KeyError or
    # IndexError: neither says what is wrong.
    path = tmp_path / f"data{suffix}"
    path.write_bytes(content)
    expected = {".npz": r"is not an \.npz archive \(the zip file np\.savez writes\)",
                ".pt": r"is not a readable tensor file \(it is (empty|not a file torch\.save writes)\)"}[suffix]
    with pytest.raises(DataError, match=expected):
        make_arrays_task(seed=0, device="cpu", options={"path": str(path)})


# --- memory ------------------------------------------------------------------------------------


def test_an_image_folder_beyond_memory_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pngs(tmp_path, "train", 4)
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 20)
    with pytest.raises(ConfigError, match=rf"^image folder {tmp_path / 'train'}: its 12 images at 512×512 "
                                          r"pixels would need about 18\.0 MiB .*; lower image_size$"):
        make_imagefolder_task(seed=0, device="cpu", options={"path": str(tmp_path), "image_size": 512, **SMALL})


def test_a_compressed_array_file_beyond_memory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, x=np.zeros((64, 3, 64, 64), np.uint8), y=np.zeros(64, np.int64))
    assert path.stat().st_size < 64 * 3 * 64 * 64 // 20  # compressed far below its arrays
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 20)
    with pytest.raises(DataError, match=rf"^array file {path}: its arrays, decompressed, would need about 1\.5 MiB"):
        make_arrays_task(seed=0, device="cpu", options={"path": str(path), **SMALL})


# --- through the CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["imagefolder", "arrays"])
def test_esper_run_on_own_data(tmp_path: Path, task: str) -> None:
    if task == "imagefolder":
        write_pngs(tmp_path / "data", "train", 8)
        data = tmp_path / "data"
    else:
        data = tmp_path / "data.npz"
        x, y = fake_images(40, np.random.default_rng(1))
        np.savez(data, x=x, y=y)
    out = tmp_path / "run"
    result = run_esper(
        ["run", "--task", task, "--data", str(data), "--epochs", "2", "--policy", "heuristic",
         "--threads", "1", "--no-compare-baseline", "--task-option", "widths=4,8,8",
         "--task-option", "batch_size=8", "--out", str(out), "--json"],
        cwd=tmp_path, env={"OMP_NUM_THREADS": "1"}, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert (summary["task"], summary["epochs"]) == (task, 2)
    assert 0 <= summary["final_accuracy"] <= 100
