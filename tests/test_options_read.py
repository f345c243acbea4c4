"""Every task and option-taking policy our distributions install declares how it reads its options
(``read_options``), reads them as its factory does, and so a resume given an option's default
continues where one given another value is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import attrs
import pytest

from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.plugins.blame import module_of
from esper_core.testing.distributions import run_esper

#: policies that take no options at all (their factories refuse any)
OPTIONLESS = {"random", "noop"}


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(load_plugins(PluginSettings()))


def _ours(spec_module: str) -> bool:
    return spec_module.startswith(("esper_blueprints_cnn", "esper_blueprints_transformer", "esper_policies"))


def test_every_task_and_option_taking_policy_of_ours_declares_read_options(catalog):
    tasks = [spec for spec in catalog.tasks if _ours(module_of(spec.factory))]
    policies = [spec for spec in catalog.policies if _ours(module_of(spec.factory)) and spec.name not in OPTIONLESS]
    assert {t.name for t in tasks} >= {"shapes", "micro", "cifar10", "cifar100", "imagefolder", "arrays",
                                       "pytext", "textfile"}
    assert {p.name for p in policies} >= {"heuristic", "ppo", "iql"}
    least = {"iql": {"dataset": "recorded"}}  # IQL trains from a dataset: a table without one is refused
    for spec in [*tasks, *policies]:
        assert spec.read_options is not None, f"{spec.name} declares no read_options"
        read = spec.read_options(options=least.get(spec.name, {}))
        assert attrs.has(type(read)), f"{spec.name}: read_options returned {type(read).__name__}"


@pytest.mark.parametrize("name", ["ppo", "iql"])
def test_a_learned_policy_reads_its_acting_options_when_the_table_names_a_checkpoint(catalog, name):
    from esper_core.errors import ConfigError

    read = catalog.policies.get(name).read_options
    acting = read(options={"checkpoint": "run/policy.pt"})
    assert acting.checkpoint == "run/policy.pt" and acting.sample is False
    assert not hasattr(read(options={"dataset": "recorded"} if name == "iql" else {}), "checkpoint")
    if name == "iql":
        with pytest.raises(ConfigError, match="offline training needs a dataset"):
            read(options={})


@pytest.mark.parametrize("name", ["shapes", "micro"])
def test_a_task_reads_its_options_as_its_factory_builds_it(catalog, name):
    spec = catalog.tasks.get(name)
    read = spec.read_options(options={"batch_size": 16})
    task = spec.factory(seed=0, device="cpu", options={"batch_size": 16})
    assert (task.train_size, task.val_size, task.test_size) == (read.train_size, read.val_size, read.test_size)
    assert task.batch_size == read.batch_size == 16
    assert task.host_config.widths == read.widths


def test_a_resume_given_a_task_option_at_its_default_continues_and_a_change_is_refused(tmp_path):
    """The run is stopped by removing what its end writes (so resuming it has work to do), then
    resumed through the CLI, as a user would after a crash."""
    finished = tmp_path / "finished"
    args = ["--log-level", "warning", "run", "--task", "micro", "--epochs", "2", "--no-compare-baseline",
            "--threads", "1", "--device", "cpu"]
    done = run_esper([*args, "--out", str(finished)], env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    for name in ("summary.json", "model.pt"):
        (run_dir / name).unlink()
    config = (run_dir / "config.toml").read_bytes()

    def resume(*extra: str):
        return run_esper(["--log-level", "warning", "run", "--resume", str(run_dir), *extra],
                         env={"OMP_NUM_THREADS": "1"})

    refused = resume("--task-option", "train_size=4000")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert ("this changes it ([task] train_size: 8000 in its config.toml, 4000 now)"
            in refused.stderr)
    assert (run_dir / "config.toml").read_bytes() == config
    continued = resume("--task-option", "train_size=8000", "--task-option", "widths=8,16,32")
    assert continued.returncode == 0, continued.stderr
    assert Path(run_dir / "summary.json").is_file()
