"""TaskSpec.defaults: one typed record, resolved in one place (config, else task, else record)."""

from __future__ import annotations

import pytest

from esper_core.config import RunConfig
from esper_core.contracts.run_defaults import RunDefaults, TrainingSettings
from esper_core.contracts.specs import TaskSpec
from esper_core.errors import ConfigError
from esper_core.setup.resolve import run_settings


def task(defaults: object) -> TaskSpec:
    return TaskSpec(name="toy", topology="mlp", factory=print, description="d", defaults=defaults)


def test_a_task_without_defaults_gets_the_records_own() -> None:
    assert task(RunDefaults()).defaults == RunDefaults()
    assert TaskSpec(name="toy", topology="mlp", factory=print, description="d").defaults.epochs == 25


def test_a_mapping_still_works_but_warns() -> None:
    with pytest.warns(DeprecationWarning, match="task 'toy' defaults: a mapping of run defaults is deprecated"):
        spec = task({"epochs": 6, "lr": 1e-2, "slots": ["a", "b"], "max_seeds": 2})
    assert spec.defaults == RunDefaults(epochs=6, max_seeds=2, slots=("a", "b"),
                                        training=TrainingSettings(lr=1e-2))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(("defaults", "message"), [
    ({"epoch": 6}, "task 'toy' defaults: unknown key 'epoch' (did you mean 'epochs'?); allowed keys: batch_size"),
    ({"lr": -1.0}, "task 'toy' defaults option 'lr' = -1.0 is invalid; expected a finite number > 0"),
    ({"optimizer": "adam"}, "expected one of 'adamw', 'sgd' (did you mean 'adamw'?)"),
    ({"slots": "block1"}, "'slots' = 'block1' is invalid; expected a list of names"),
])
def test_bad_mapping_defaults_name_the_task_and_the_key(defaults: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        task(defaults)
    assert message in str(info.value)


def test_bad_record_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="epochs = 0 is invalid; expected an integer ≥ 1"):
        RunDefaults(epochs=0)
    with pytest.raises(ConfigError, match="lr_schedule = 'warmup' is invalid; expected one of"):
        TrainingSettings(lr_schedule="warmup")
    with pytest.raises(ConfigError, match="training"):
        RunDefaults(training={"lr": 1.0})  # type: ignore[arg-type]


def test_the_config_wins_then_the_task_then_the_record() -> None:
    spec = task(RunDefaults(epochs=6, slots=("a",), training=TrainingSettings(lr=1e-2, batch_size=32)))
    config = RunConfig.from_dict({"run": {"epochs": 3}, "training": {"batch_size": 8}})
    settings = run_settings(config, spec)
    assert (settings.epochs, settings.slots, settings.max_seeds) == (3, ("a",), 1)
    assert (settings.training.batch_size, settings.training.lr, settings.training.optimizer) == (8, 1e-2, "adamw")
    assert run_settings(RunConfig(), spec) == spec.defaults


def test_from_mapping_takes_a_record_as_it_is_and_refuses_other_things() -> None:
    record = RunDefaults(epochs=4)
    assert RunDefaults.from_mapping(record) is record
    with pytest.raises(ConfigError, match="^task 'toy' defaults: expected RunDefaults"):
        task(("epochs", 4))
