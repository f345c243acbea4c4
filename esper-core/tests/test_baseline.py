"""The no-growth baseline: alongside in a second process, after the episodes, or from the cache —
always the same numbers, and never at the cost of the run's own."""

from __future__ import annotations

import importlib
import json
import os
import sys
import types

import pytest
from engine_helpers import Scripted, _policies_plugin
from structlog.testing import capture_logs

from esper_core import hookimpl
from esper_core.cache import cache_dir
from esper_core.config import RunConfig
from esper_core.contracts import PolicySpec
from esper_core.errors import ConfigError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.setup.tasks import prepare_task
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.tolaria import baseline as baseline_module
from esper_core.tolaria.baseline import Baseline, baseline_episode, cache_key, check_entry
from esper_core.tolaria.job import execute_run

PLUGIN = "esper_baseline_test_policies"


@pytest.fixture
def catalog(tmp_path, monkeypatch):
    # The policies live in a module file, as an installed plugin's do, so the cache can hash them.
    (tmp_path / f"{PLUGIN}.py").write_text(
        "from engine_helpers import _policies_plugin\n"
        "esper_register_policies = _policies_plugin().esper_register_policies\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(PLUGIN, None)
    baseline_module._source_digest.cache_clear()
    loaded = load_plugins(PluginSettings(autoload=False),
                          extra=[("toy", toy), ("scripted", importlib.import_module(PLUGIN))])
    return build_catalog(loaded)


def _resolved(catalog, **run):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "scripted", "epochs": 6, **run},
                                  "gates": {"g5_min_contribution": -100.0}})
    return resolve_run(config, catalog)


def _run(catalog, tmp_path, name, **run):
    resolved = _resolved(catalog, **run)
    return execute_run(resolved, catalog, create_run_dir(tmp_path / name))


def _numbers(summary):
    return {k: summary[k] for k in ("final_accuracy", "best_accuracy", "test_accuracy", "seed_params", "seeds",
                                    "total_reward")}


def _baseline_numbers(baseline):
    return {k: v for k, v in baseline.items() if k not in {"wall_seconds", "source"}}


def test_the_baseline_never_changes_the_runs_own_numbers(catalog, tmp_path):
    alone = _run(catalog, tmp_path, "alone", compare_baseline=False)
    compared = _run(catalog, tmp_path, "compared")
    assert _numbers(compared) == _numbers(alone)
    assert compared["baseline"]["source"] in {"alongside", "after"}


def test_alongside_after_and_a_noop_run_alone_agree(catalog, tmp_path):
    resolved = _resolved(catalog)
    _, task, slots = prepare_task(resolved)
    results = {}
    for mode, alongside in (("alongside", True), ("after", False)):
        baseline = Baseline.begin(resolved, catalog, task, slots, device="cpu", use_cache=False, alongside=alongside)
        results[mode] = baseline.finish()
        assert results[mode]["source"] == mode
    noop = _run(catalog, tmp_path, "noop", policy="noop", compare_baseline=False)
    assert _baseline_numbers(results["alongside"]) == _baseline_numbers(results["after"])
    assert results["after"]["final_accuracy"] == noop["final_accuracy"]
    assert results["after"]["test_accuracy"] == noop["test_accuracy"]
    assert len(results["after"]["val_accuracy_per_epoch"]) == 6
    assert results["after"]["val_accuracy_per_epoch"][-1] == noop["final_accuracy"]


def test_a_repeat_reuses_the_cached_baseline(catalog, tmp_path):
    first = _run(catalog, tmp_path, "first")
    with capture_logs() as logs:
        second = _run(catalog, tmp_path, "second")
    assert second["baseline"]["source"] == "cache"
    assert _baseline_numbers(second["baseline"]) == _baseline_numbers(first["baseline"])
    assert any("reusing" in e["event"] for e in logs)
    # Whatever cannot touch a no-seed episode keeps the entry; the recipe does not.
    assert _run(catalog, tmp_path, "rewards", reward_preset="sparse")["baseline"]["source"] == "cache"
    changed = _run(catalog, tmp_path, "seed", seed=1)["baseline"]
    assert changed["source"] != "cache" and changed["final_accuracy"] != first["baseline"]["final_accuracy"]


def test_no_baseline_cache_neither_reads_nor_writes(catalog, tmp_path):
    _run(catalog, tmp_path, "one", baseline_cache=False)
    assert not (cache_dir() / "baselines").exists()
    _run(catalog, tmp_path, "two")
    assert _run(catalog, tmp_path, "three", baseline_cache=False)["baseline"]["source"] != "cache"


def test_the_key_follows_code_torch_threads_and_config(catalog, monkeypatch):
    resolved = _resolved(catalog)
    key = cache_key(resolved, catalog, device="cpu")
    assert key == cache_key(_resolved(catalog, policy="noop", episodes=3), catalog, device="cpu")
    assert key != cache_key(_resolved(catalog, epochs=7), catalog, device="cpu")
    assert key != cache_key(resolved, catalog, device="cuda")
    monkeypatch.setattr(baseline_module.torch, "get_num_threads", lambda: 7)
    assert key != cache_key(resolved, catalog, device="cpu")


def test_a_source_edit_invalidates(catalog, tmp_path):
    resolved = _resolved(catalog)
    before = cache_key(resolved, catalog, device="cpu")
    with open(tmp_path / f"{PLUGIN}.py", "a") as handle:
        handle.write("# an edit\n")
    baseline_module._source_digest.cache_clear()
    assert cache_key(resolved, catalog, device="cpu") != before


def test_a_plugin_without_source_files_is_never_cached():
    # _policies_plugin() is a module object with no file behind it
    loaded = load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("scripted", _policies_plugin())])
    in_memory = build_catalog(loaded)
    assert cache_key(_resolved(in_memory), in_memory, device="cpu") is None


@pytest.mark.parametrize("damage, why", [
    (lambda entry: "{not json", "Expecting"),
    (lambda entry: json.dumps([1, 2]), "not a JSON object"),
    (lambda entry: json.dumps({**entry, "version": 99}), "version-1"),
    (lambda entry: json.dumps({**entry, "key": "0" * 64}), "key does not match"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "final_accuracy": "99"}}),
     "'final_accuracy' holds str"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "extra": 1}}), "exactly the fields"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "val_accuracy_per_epoch": ["x"]}}),
     "numbers only"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "test_metrics": {"perplexity": "x"}}}),
     "map names to numbers"),
    (lambda entry: " " * (baseline_module.MAX_ENTRY_BYTES + 1), f"at most {baseline_module.MAX_ENTRY_BYTES} are read"),
    # well-typed, yet no baseline episode records it (json reads NaN; 10**30 is an int)
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "final_accuracy": float("nan")}}),
     "'final_accuracy' is nan, not an accuracy in 0-100"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "best_accuracy": 1e300}}),
     "'best_accuracy' is 1e+300, not an accuracy"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "val_accuracy_per_epoch": [float("inf")]}}),
     "'val_accuracy_per_epoch[0]' is inf"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "test_loss": float("nan")}}),
     "'test_loss' is nan, not a finite number"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "host_params": 10**30}}),
     "not a parameter count a host has"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "seed_params": 10**30}}),
     "a baseline episode plants no seed"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "val_accuracy_per_epoch": [50.0]}}),
     "not one per epoch"),
    (lambda entry: json.dumps({**entry, "baseline": {**entry["baseline"], "final_accuracy": 99.0}}),
     "disagree with its accuracy curve"),
])
def test_a_damaged_entry_is_reported_and_recomputed(catalog, tmp_path, damage, why):
    first = _run(catalog, tmp_path, "first")
    [path] = (cache_dir() / "baselines").iterdir()
    path.write_text(damage(json.loads(path.read_text())))
    with capture_logs() as logs:
        again = _run(catalog, tmp_path, "again")
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert any("ignoring the cached baseline" in w and why in w for w in warnings), warnings
    assert again["baseline"]["source"] != "cache"
    assert _baseline_numbers(again["baseline"]) == _baseline_numbers(first["baseline"])
    assert check_entry(json.loads(path.read_text()), path.stem)["final_accuracy"] == first["baseline"]["final_accuracy"]


def test_an_unwritable_cache_costs_only_a_warning(catalog, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ESPER_CACHE_DIR", str(blocker))
    with capture_logs() as logs:
        summary = _run(catalog, tmp_path, "run")
    assert "baseline" in summary
    assert any("could not store the baseline" in e["event"] for e in logs)


def test_cache_dir_follows_the_environment(tmp_path):
    assert cache_dir({"ESPER_CACHE_DIR": "/x"}) == type(tmp_path)("/x")
    assert cache_dir({"XDG_CACHE_HOME": "/y"}) == type(tmp_path)("/y/esper")
    assert str(cache_dir({})).endswith(os.path.join(".cache", "esper"))


def test_without_noop_installed_the_baseline_is_a_clear_error():
    only_scripted = types.ModuleType("only_scripted")

    @hookimpl
    def esper_register_policies():
        return [PolicySpec(name="scripted", factory=lambda context: Scripted(context), description="test")]

    only_scripted.esper_register_policies = esper_register_policies
    bare = build_catalog(load_plugins(PluginSettings(autoload=False),
                                      extra=[("toy", toy), ("scripted", only_scripted)]))
    resolved = _resolved(bare)
    _, task, slots = prepare_task(resolved)
    with pytest.raises(ConfigError, match="no installed plugin declares a baseline policy"):
        Baseline.begin(resolved, bare, task, slots, device="cpu")


def test_an_error_in_the_baseline_process_reaches_the_run(catalog, monkeypatch):
    resolved = _resolved(catalog)
    _, task, slots = prepare_task(resolved)

    def broken(*args, **kwargs):
        raise ConfigError("the baseline's task could not load its data")

    monkeypatch.setattr(baseline_module, "baseline_episode", broken)
    baseline = Baseline.begin(resolved, catalog, task, slots, device="cpu", use_cache=False, alongside=True)
    with pytest.raises(ConfigError, match="could not load its data"):
        baseline.finish()


def test_baseline_episode_is_the_sequential_path(catalog):
    resolved = _resolved(catalog)
    _, task, slots = prepare_task(resolved)
    result = baseline_episode(resolved, catalog, task, slots)
    assert result["policy"] == "noop" and result["seed_params"] == 0


def _print_logs_to_stdout():
    import logging

    import structlog

    structlog.configure(processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
                        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
                        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


@pytest.mark.parametrize("alongside", [True, False])
def test_only_the_baseline_after_the_run_prints_its_epochs(catalog, capfd, alongside):
    # Alongside, its epoch lines would interleave with the run's on the same terminal.
    resolved = _resolved(catalog)
    _, task, slots = prepare_task(resolved)
    _print_logs_to_stdout()
    Baseline.begin(resolved, catalog, task, slots, device="cpu", use_cache=False, alongside=alongside).finish()
    out = capfd.readouterr().out
    assert "baseline: training the same host without growth" in out
    assert ("event='epoch'" in out) is not alongside
