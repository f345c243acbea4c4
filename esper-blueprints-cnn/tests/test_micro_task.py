"""The ``micro`` task: registration, data, options, the epoch pool, and one CLI episode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from esper_blueprints_cnn import plugin
from esper_blueprints_cnn.micro import (
    MICRO_DEFAULTS,
    MICRO_EPOCH_SIZE,
    MICRO_KASMINA,
    MICRO_TRAIN_SIZE,
    MICRO_VAL_SIZE,
)
from esper_blueprints_cnn.tasks.base import ImageData, ImageTask
from esper_blueprints_cnn.tasks.procedural import ALLOWED_OPTIONS, make_micro_task
from esper_core.errors import ConfigError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.testing.distributions import run_esper

SMALL = {"train_size": 96, "epoch_size": 40, "val_size": 24, "batch_size": 16}


def collect_labels(batches) -> torch.Tensor:
    return torch.cat([y for _, y in batches])


def test_micro_is_registered_next_to_shapes() -> None:
    tasks = {t.name: t for t in plugin.esper_register_tasks()}
    micro = tasks["micro"]
    assert micro.topology == "cnn" and "PPO" in micro.description
    assert micro.kasmina is MICRO_KASMINA and micro.defaults is MICRO_DEFAULTS
    assert micro.factory.resolve() is make_micro_task
    catalog = build_catalog(load_plugins(PluginSettings(allow=("cnn",), strict=True)))
    assert catalog.tasks.get("micro").kasmina is MICRO_KASMINA


def test_default_episode_fits_a_heuristic_lifecycle() -> None:
    """The heuristic germinates after ≥ 5 epochs and 3 plateau epochs; on micro it measurably
    does so by epoch 8–12 (the smoothed Δ needs that long to decay after the early climb). Then
    TRAINING, BLENDING, SHADOWING and one PROBATIONARY epoch must still fit."""
    gates, life = MICRO_KASMINA.gates, MICRO_KASMINA.lifecycle
    after_germination = gates.g2_min_epochs + life.blending_epochs + gates.g4_window + 1
    assert 10 + after_germination <= MICRO_DEFAULTS.epochs <= 16
    assert gates.g3_min_epochs == life.blending_epochs
    assert MICRO_DEFAULTS.training.lr_schedule == "step" and MICRO_DEFAULTS.training.lr_step_epoch < 5


def test_data_is_a_function_of_data_seed() -> None:
    a = make_micro_task(seed=0, device="cpu", options=SMALL)
    b = make_micro_task(seed=3, device="cpu", options=SMALL)  # the run seed leaves data alone
    assert torch.equal(a._train, b._train) and torch.equal(a._val, b._val)
    assert torch.equal(a._train_labels, b._train_labels)
    c = make_micro_task(seed=0, device="cpu", options={**SMALL, "data_seed": 1})
    assert not torch.equal(a._train, c._train) and not torch.equal(a._val, c._val)
    assert a._train.shape == (96, 16, 16, 3) and a._val.shape == (24, 16, 16, 3)
    assert a.image_size == (16, 16) and a.name == "micro" and not a.augment


def test_defaults() -> None:
    task = make_micro_task(seed=0, device="cpu", options={})
    assert (task.train_size, task.epoch_size, task.val_size) == (
        MICRO_TRAIN_SIZE, MICRO_EPOCH_SIZE, MICRO_VAL_SIZE)
    assert task.host_config.widths == (8, 16, 32)
    assert "1000 per epoch" in repr(task)


def test_each_epoch_draws_a_fresh_subset_of_the_pool() -> None:
    task = make_micro_task(seed=0, device="cpu", options=SMALL)
    first = collect_labels(task.train_batches(epoch=1))
    assert first.numel() == 40
    assert torch.equal(first, collect_labels(task.train_batches(epoch=1)))
    images = [torch.cat([x for x, _ in task.train_batches(epoch=e)]) for e in (1, 2)]
    assert images[0].shape == (40, 3, 16, 16) and not torch.equal(images[0], images[1])
    # Over a few epochs the draws cover far more of the pool than one epoch holds.
    seen = {row.numpy().tobytes() for epoch in range(1, 6)
            for x, _ in task.train_batches(epoch=epoch) for row in x}
    assert len(seen) > 60


def test_epoch_size_equal_to_the_pool_is_a_full_pass() -> None:
    task = make_micro_task(seed=0, device="cpu", options={**SMALL, "epoch_size": 96})
    labels = collect_labels(task.train_batches(epoch=1))
    assert torch.equal(labels.sort().values, task._train_labels.sort().values)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"data_dir": "/tmp"}, "'data_dir'"),
        ({"image_size": 3}, "option 'image_size'"),
        ({"image_size": "big"}, "option 'image_size'"),
        ({"epoch_size": 0}, "option 'epoch_size'"),
        ({"train_size": 50, "epoch_size": 60}, "option 'epoch_size' (60) must not exceed"),
        ({"widths": []}, "option 'widths'"),
    ],
)
def test_bad_options_name_the_option(options: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_micro_task(seed=0, device="cpu", options=options)
    assert key in str(err.value) and "'micro'" in str(err.value)


def test_unknown_option_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as err:
        make_micro_task(seed=0, device="cpu", options={"download": True})
    assert all(key in str(err.value) for key in ALLOWED_OPTIONS)


def test_image_task_checks_epoch_size() -> None:
    images = torch.zeros(4, 8, 8, 3, dtype=torch.uint8)
    data = ImageData(train_images=images, train_labels=torch.zeros(4, dtype=torch.int64),
                     val_images=images, val_labels=torch.zeros(4, dtype=torch.int64),
                     test_images=images, test_labels=torch.zeros(4, dtype=torch.int64), num_classes=2)
    with pytest.raises(ValueError, match="epoch_size must be between 1 and the 4"):
        ImageTask(name="t", data=data, seed=0, device="cpu", batch_size=2, widths=(4,),
                  augment=False, epoch_size=5)


def test_esper_run_micro_end_to_end(tmp_path: Path) -> None:
    """One default heuristic episode through the CLI: 16 epochs, and a seed is germinated on
    the plateau within it."""
    out = tmp_path / "run"
    result = run_esper(
        ["run", "--task", "micro", "--policy", "heuristic", "--threads", "1",
         "--no-compare-baseline", "--out", str(out), "--json"],
        cwd=tmp_path, env={"OMP_NUM_THREADS": "1"}, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert (summary["task"], summary["policy"], summary["epochs"]) == ("micro", "heuristic", 16)
    assert 10 < summary["final_accuracy"] <= summary["best_accuracy"] <= 100
    assert summary["seeds"], "the heuristic germinates on micro's plateau within the episode"
    epochs = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()
              if '"kind": "epoch"' in line]
    assert len(epochs) == 16
