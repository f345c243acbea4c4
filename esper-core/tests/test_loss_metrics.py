"""A task's optional ``loss_metrics``: the engine records what the task derives from a mean loss
(text tasks: perplexity, bits per byte) per epoch and for the test split, and the end-of-run
table shows the test loss and each metric."""

from __future__ import annotations

import json
import math

import pytest
from engine_helpers import _policies_plugin

from esper_core.config import RunConfig
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.presentation.run_report import format_summary
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.tolaria.job import execute_run


def _run(tmp_path, *, baseline=False):
    catalog = build_catalog(load_plugins(PluginSettings(autoload=False),
                                         extra=[("toy", toy), ("scripted", _policies_plugin())]))
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "scripted", "epochs": 3,
                                          "compare_baseline": baseline, "baseline_cache": False}})
    out = create_run_dir(tmp_path / "run")
    summary = execute_run(resolve_run(config, catalog), catalog, out)
    epochs = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return summary, [e for e in epochs if e["kind"] == "epoch"]


def test_a_task_without_loss_metrics_records_its_test_loss_only(tmp_path):
    summary, epochs = _run(tmp_path)
    assert summary["test_loss"] > 0 and "test_metrics" not in summary
    assert all(e["val_metrics"] == {} for e in epochs)
    assert "test loss" not in format_summary(summary)


def test_the_engine_records_a_tasks_loss_metrics_as_given(tmp_path, monkeypatch):
    monkeypatch.setattr(toy.ToyTask, "loss_metrics", lambda self, loss: {"e_to_the_loss": math.exp(loss)},
                        raising=False)
    summary, epochs = _run(tmp_path)
    assert summary["test_metrics"] == {"e_to_the_loss": pytest.approx(math.exp(summary["test_loss"]))}
    assert [e["val_metrics"] for e in epochs] == [{"e_to_the_loss": pytest.approx(math.exp(e["val_loss"]))}
                                                  for e in epochs]


def test_the_end_of_run_table_shows_test_loss_and_metrics_for_both_rows():
    summary = {"run_id": "r", "task": "pytext", "policy": "heuristic", "seed": 0, "epochs": 5, "wall_seconds": 1.0,
               "final_accuracy": 40.0, "best_accuracy": 41.0, "test_accuracy": 39.5, "host_params": 10,
               "seed_params": 0, "seeds": [], "test_loss": 1.75,
               "test_metrics": {"perplexity": math.exp(1.75), "bits_per_byte": 1.75 / math.log(2)},
               "baseline": {"policy": "noop", "final_accuracy": 38.0, "best_accuracy": 38.0, "test_accuracy": 37.0,
                            "host_params": 10, "seed_params": 0}}
    header, _, run_row, base_row = format_summary(summary).splitlines()[2:6]
    assert [c.strip() for c in header.split("  ") if c.strip()][:5] == [
        "policy", "test acc %", "test loss", "test perplexity", "test bits per byte"]
    assert run_row.split()[:5] == ["heuristic", "39.50", "1.7500", "5.7546", "2.5247"]
    # A baseline summary without the measures shows dashes, not a crash.
    assert base_row.split()[2:6] == ["37.00", "-", "-", "-"]


def test_the_baseline_row_has_the_same_measures(tmp_path, monkeypatch):
    monkeypatch.setattr(toy.ToyTask, "loss_metrics", lambda self, loss: {"twice": 2 * loss}, raising=False)
    summary, _ = _run(tmp_path, baseline=True)
    baseline = summary["baseline"]
    assert baseline["test_metrics"] == {"twice": pytest.approx(2 * baseline["test_loss"])}
    base_row = format_summary(summary).splitlines()[5]
    assert f"{baseline['test_loss']:.4f}" in base_row and f"{2 * baseline['test_loss']:.4f}" in base_row
