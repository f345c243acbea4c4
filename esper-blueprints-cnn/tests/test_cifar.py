"""CIFAR loaders on small files written in the real python-pickle format.

torchvision verifies each file against the md5 in the dataset class (``train_list``,
``test_list``, ``meta``). Our fixtures are not the real archives, so the ``cifar_files``
fixture registers the md5s of the files it wrote on the class (monkeypatched for the test
only). torchvision's own ``_check_integrity`` then runs unchanged: a file altered after that
still fails the check, exactly as a corrupt download would.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torchvision import datasets

from esper_blueprints_cnn.tasks.cifar import (
    CIFAR10,
    CIFAR100,
    default_data_dir,
    load_cifar,
    make_cifar10_task,
    make_cifar100_task,
)
from esper_core.errors import ConfigError, DataError

N = 12  # images per file


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _batch(rng: np.random.Generator, n: int, classes: int, label_key: str) -> dict:
    return {
        "batch_label": "fixture",
        label_key: rng.integers(0, classes, n).tolist(),
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{i}.png" for i in range(n)],
    }


def write_cifar10(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump(_batch(rng, N, 10, "labels"), f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)], "num_cases_per_batch": N,
                     "num_vis": 3072}, f, protocol=2)
    return folder


def write_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, n in [("train", 3 * N), ("test", N)]:
        batch = _batch(rng, n, 100, "fine_labels")
        batch["coarse_labels"] = [label // 5 for label in batch["fine_labels"]]
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"f{i}" for i in range(100)],
                     "coarse_label_names": [f"k{i}" for i in range(20)]}, f, protocol=2)
    return folder


def register_md5s(monkeypatch: pytest.MonkeyPatch, cls: type, folder: Path) -> None:
    for attr in ("train_list", "test_list"):
        monkeypatch.setattr(cls, attr, [[name, _md5(folder / name)] for name, _ in getattr(cls, attr)])
    meta = dict(cls.meta)
    meta["md5"] = _md5(folder / meta["filename"])
    monkeypatch.setattr(cls, "meta", meta)


@pytest.fixture
def cifar10_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    register_md5s(monkeypatch, datasets.CIFAR10, write_cifar10(tmp_path))
    return tmp_path


@pytest.fixture
def cifar100_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    register_md5s(monkeypatch, datasets.CIFAR100, write_cifar100(tmp_path))
    return tmp_path


def test_reads_the_real_format(cifar10_dir: Path) -> None:
    images, labels = load_cifar(CIFAR10, root=cifar10_dir, train=True, download=False)
    assert images.shape == (5 * N, 32, 32, 3) and images.dtype == torch.uint8
    assert labels.shape == (5 * N,) and labels.dtype == torch.int64
    with open(cifar10_dir / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="latin1")
    # Rows are channel-planar (R plane, G plane, B plane); ours are HWC.
    expected = torch.from_numpy(first["data"][0].reshape(3, 32, 32).transpose(1, 2, 0).copy())
    assert torch.equal(images[0], expected)
    assert labels[:N].tolist() == first["labels"]
    test_images, _ = load_cifar(CIFAR10, root=cifar10_dir, train=False, download=False)
    assert test_images.shape[0] == N


def test_cifar10_task(cifar10_dir: Path) -> None:
    task = make_cifar10_task(seed=0, device="cpu", options={"data_dir": str(cifar10_dir), "val_size": N,
                                                             "train_size": 40, "batch_size": 16})
    assert (task.name, task.train_size, task.val_size, task.test_size, task.num_classes) == (
        "cifar10", 40, N, N, 10)
    # Validation is held back from the end of the training set; the official test set is the
    # held-out test split.
    train_images, _ = load_cifar(CIFAR10, root=cifar10_dir, train=True, download=False)
    test_images, _ = load_cifar(CIFAR10, root=cifar10_dir, train=False, download=False)
    val_x, _ = next(iter(task.val_batches()))
    test_x, _ = next(iter(task.test_batches()))
    assert torch.equal(val_x, task._to_input(train_images[-N:]))
    assert torch.equal(test_x, task._to_input(test_images))
    x, _ = next(iter(task.train_batches(epoch=0)))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
    host = task.build_host()
    assert host.injection_points[0].width == 32  # CIFAR hosts default to 32/64/128
    assert host(x).shape == (16, 10)


def test_cifar100_task(cifar100_dir: Path) -> None:
    task = make_cifar100_task(seed=0, device="cpu",
                              options={"data_dir": str(cifar100_dir), "widths": [4, 8], "val_size": N})
    assert (task.name, task.train_size, task.val_size, task.num_classes) == ("cifar100", 2 * N, N, 100)
    x, _ = next(iter(task.val_batches()))
    assert task.build_host()(x).shape == (N, 100)


def test_a_validation_split_that_leaves_nothing_to_train_on_is_refused(cifar10_dir: Path) -> None:
    with pytest.raises(ConfigError, match="val_size.*leaving none to train on"):
        make_cifar10_task(seed=0, device="cpu", options={"data_dir": str(cifar10_dir), "val_size": 5 * N})


def test_missing_data_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        make_cifar10_task(seed=0, device="cpu", options={"data_dir": str(tmp_path / "nowhere")})
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert "download" in message and "data_dir" in message


def test_corrupt_file_fails_the_integrity_check(cifar10_dir: Path) -> None:
    path = cifar10_dir / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="not found or corrupt"):
        load_cifar(CIFAR10, root=cifar10_dir, train=True, download=False)


def test_unreadable_file_with_a_valid_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_cifar100(tmp_path)
    (folder / "test").write_bytes(b"not a pickle at all")
    register_md5s(monkeypatch, datasets.CIFAR100, folder)
    with pytest.raises(DataError, match="could not be read"):
        load_cifar(CIFAR100, root=tmp_path, train=False, download=False)


def test_wrong_image_layout_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_cifar100(tmp_path)
    with open(folder / "test", "wb") as f:
        pickle.dump({"data": np.zeros((N, 3072), dtype=np.int32), "fine_labels": [0] * N}, f)
    register_md5s(monkeypatch, datasets.CIFAR100, folder)
    with pytest.raises(DataError, match="expected uint8"):
        load_cifar(CIFAR100, root=tmp_path, train=False, download=False)


def test_out_of_range_labels_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_cifar100(tmp_path)
    batch = _batch(np.random.default_rng(2), N, 100, "fine_labels")
    batch["fine_labels"][0] = 100
    with open(folder / "test", "wb") as f:
        pickle.dump(batch, f)
    register_md5s(monkeypatch, datasets.CIFAR100, folder)
    with pytest.raises(DataError, match="outside 0..99"):
        load_cifar(CIFAR100, root=tmp_path, train=False, download=False)


def test_download_only_when_asked_and_failure_is_a_data_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def offline(self: datasets.CIFAR10) -> None:
        calls.append(self.root)
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(datasets.CIFAR10, "download", offline)
    with pytest.raises(DataError):
        load_cifar(CIFAR10, root=tmp_path, train=True, download=False)
    assert calls == []
    with pytest.raises(DataError, match="download failed"):
        load_cifar(CIFAR10, root=tmp_path, train=True, download=True)
    assert calls == [str(tmp_path)]


def test_subset_larger_than_split_is_a_config_error(cifar10_dir: Path) -> None:
    with pytest.raises(ConfigError, match="'test_size'.*only 12"):
        make_cifar10_task(seed=0, device="cpu", options={"data_dir": str(cifar10_dir), "val_size": N,
                                                         "test_size": 13})


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ESPER_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("ESPER_DATA_DIR")
    assert default_data_dir() == Path("~/.cache/esper/data").expanduser()


def test_default_data_dir_is_used(monkeypatch: pytest.MonkeyPatch, cifar10_dir: Path) -> None:
    monkeypatch.setenv("ESPER_DATA_DIR", str(cifar10_dir))
    assert make_cifar10_task(seed=0, device="cpu", options={"val_size": N}).train_size == 4 * N


def test_cifar_tasks_name_their_classes_from_the_meta_file(cifar10_dir: Path, cifar100_dir: Path) -> None:
    ten = make_cifar10_task(seed=0, device="cpu", options={"data_dir": str(cifar10_dir), "val_size": N,
                                                            "train_size": 40})
    assert ten.class_names == tuple(f"c{i}" for i in range(10))  # the fixture's batches.meta label_names
    assert ten.input_contract()["class_names"] == [f"c{i}" for i in range(10)]
    hundred = make_cifar100_task(seed=0, device="cpu", options={"data_dir": str(cifar100_dir), "val_size": N})
    assert hundred.class_names == tuple(f"f{i}" for i in range(100))  # fine labels, as the labels are


def test_an_export_of_a_cifar_run_names_the_classes(cifar10_dir: Path, tmp_path: Path) -> None:
    from esper_core.cli.main import build_cli
    from esper_core.plugins import PluginSettings, build_catalog, load_plugins
    from esper_core.storage.export import export_model, sidecar_path

    out = tmp_path / "run"
    result = CliRunner().invoke(build_cli(), [
        "run", "--task", "cifar10", "--data-dir", str(cifar10_dir), "--epochs", "1", "--threads", "1",
        "--no-compare-baseline", "--task-option", f"val_size={N}", "--task-option", "train_size=16",
        "--task-option", "widths=4,8,8", "--task-option", "batch_size=8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    path = export_model(out, build_catalog(load_plugins(PluginSettings())), fmt="torch-export")
    contract = json.loads(sidecar_path(path).read_text())
    assert contract["class_names"] == [f"c{i}" for i in range(10)]
    assert contract["input"]["shape"] == [3, 32, 32] and contract["normalisation"]


def test_a_meta_file_naming_the_wrong_number_of_classes_is_refused(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_cifar10(tmp_path)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["cat", "dog"], "num_cases_per_batch": N, "num_vis": 3072}, f, protocol=2)
    register_md5s(monkeypatch, datasets.CIFAR10, folder)
    with pytest.raises(DataError, match="the meta file names 2 classes, expected 10 names"):
        make_cifar10_task(seed=0, device="cpu", options={"data_dir": str(tmp_path), "val_size": N})
