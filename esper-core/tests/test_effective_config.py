"""A recorded configuration is compared by what its options mean: giving an option its default
on resume changes nothing, changing it is refused, naming the option and both values."""

from __future__ import annotations

import shutil
from typing import Any

import attrs
import pytest
from attrs import frozen

from esper_core import hookimpl
from esper_core.config import RunConfig
from esper_core.contracts import PolicySpec
from esper_core.errors import ConfigError, PluginError
from esper_core.options import as_int, parse_options
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.effective_config import effective_config
from esper_core.setup.resolve import resolve_run
from esper_core.storage.run_checkpoint import comparable_config, first_difference
from esper_core.storage.rundir import CONFIG_FILE, MODEL_FILE, SUMMARY_FILE, create_run_dir
from esper_core.testing import toy


@frozen(kw_only=True)
class PatientOptions:
    patience: int = attrs.field(default=3, converter=as_int(1))  # type: ignore[misc]


def read_patient_options(*, options: Any) -> PatientOptions:
    return parse_options(PatientOptions, options, owner="policy 'patient'")


def _patient(context: Any) -> Any:
    from engine_helpers import Germinating

    class Patient(Germinating):  # stateless, so a stopped run of it resumes
        def state_dict(self) -> dict[str, Any]:
            return {}

        def load_state_dict(self, state: dict[str, Any]) -> None:
            pass

    read_patient_options(options=context.options)
    return Patient(context)


@pytest.fixture(scope="module")
def catalog():
    class Policies:
        @hookimpl
        def esper_register_policies(self):
            return [PolicySpec(name="patient", factory=_patient, description="test",
                               read_options=read_patient_options)]

    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("p", Policies())]))


def _resolved(catalog, *, task=None, policy=None, telemetry=None, **run):
    data = {"run": {"task": "toy", "policy": "patient", "epochs": 3, "compare_baseline": False, **run},
            "task": task or {}, "policy": policy or {}, "telemetry": telemetry or {}}
    return resolve_run(RunConfig.from_dict(data), catalog)


def _difference(catalog, saved: dict[str, Any], now: dict[str, Any]) -> str | None:
    """What a resume of a run made with ``saved`` would refuse when given ``now``."""
    recorded, current = _resolved(catalog, **saved), _resolved(catalog, **now)
    return first_difference(
        comparable_config(effective_config(recorded.to_toml_dict(), current, recorded=True)),
        comparable_config(effective_config(current.to_toml_dict(), current, recorded=False)),
        saved_in="its config.toml")


@pytest.mark.parametrize("given", [
    {"task": {"train_size": 256}},            # toy's default, given as a number
    {"task": {"train_size": "256"}},          # ... and as the command line gives it
    {"policy": {"patience": 3}},
    {"telemetry": {"jsonl": {"max_bytes": 512 * 1024 * 1024}}},
])
def test_an_option_given_its_default_is_no_change(catalog, given):
    assert _difference(catalog, {}, given) is None
    assert _difference(catalog, given, {}) is None


@pytest.mark.parametrize(("given", "named"), [
    ({"task": {"train_size": 100}}, "[task] train_size: 256 in its config.toml, 100 now"),
    ({"policy": {"patience": 9}}, "[policy] patience: 3 in its config.toml, 9 now"),
    ({"telemetry": {"jsonl": {"max_bytes": 1000}}}, "[telemetry] jsonl: {"),
])
def test_a_changed_option_is_named_with_the_value_the_run_used(catalog, given, named):
    difference = _difference(catalog, {}, given)
    assert difference is not None and difference.startswith(named)


def test_a_recorded_table_its_component_no_longer_reads_is_compared_as_written(catalog):
    resolved = _resolved(catalog)
    recorded = resolved.to_toml_dict()
    recorded["task"] = {"batch_size": 32, "retired_option": 5}
    effective = effective_config(recorded, resolved, recorded=True)
    assert effective["task"] == {"batch_size": 32, "retired_option": 5}
    difference = first_difference(effective, effective_config(resolved.to_toml_dict(), resolved, recorded=False),
                                  saved_in="its config.toml")
    assert difference is not None and difference.startswith("[task] classes: not set in its config.toml, 4 now")


def test_the_current_tables_must_read(catalog):
    resolved = _resolved(catalog)
    config = resolved.to_toml_dict()
    config["task"] = {"train_size": 0}
    with pytest.raises(ConfigError, match=r"task 'toy' option 'train_size' = 0 is invalid"):
        effective_config(config, resolved, recorded=False)


def test_a_record_of_another_task_keeps_its_table(catalog):
    resolved = _resolved(catalog)
    config = resolved.to_toml_dict()
    config["run"]["task"] = "shapes"
    config["task"] = {"widths": [8, 16]}
    assert effective_config(config, resolved, recorded=True)["task"] == {"widths": [8, 16]}


def test_a_reader_that_breaks_its_contract_is_blamed_on_its_plugin(catalog):
    resolved = _resolved(catalog)
    config = resolved.to_toml_dict()
    for reader, message in ((lambda *, options: 42, r"task 'toy' \(from .*\): its read_options returned int"),
                            (lambda *, options: 1 / 0, r"task 'toy' \(from .*\) raised in reading its options: "
                                                       r"ZeroDivisionError")):
        broken = attrs.evolve(resolved, task=attrs.evolve(resolved.task, read_options=reader))
        with pytest.raises(PluginError, match=message):
            effective_config(config, broken, recorded=False)


def test_a_component_without_a_reader_is_compared_as_written(catalog):
    resolved = _resolved(catalog, task={"train_size": 256})
    bare = attrs.evolve(resolved, task=attrs.evolve(resolved.task, read_options=None))
    assert effective_config(resolved.to_toml_dict(), bare, recorded=False)["task"] == {
        "batch_size": 32, "train_size": 256}


# -- a stopped run resumes with a default given, and refuses a change --------------------------------------


def _toy_run(catalog, out, *, resume=False, task=None):
    from esper_core.tolaria.job import execute_run

    if not resume:
        create_run_dir(out)
    resolved = _resolved(catalog, task=task, out=str(out))
    return execute_run(resolved, catalog, out, resume=resume)


def test_a_resume_given_an_option_at_its_default_continues_and_a_change_is_refused(catalog, tmp_path):
    finished = tmp_path / "finished"
    _toy_run(catalog, finished)
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    for name in (SUMMARY_FILE, MODEL_FILE):
        (out / name).unlink()
    config = (out / CONFIG_FILE).read_bytes()
    with pytest.raises(ConfigError, match=r"this changes it \(\[task\] train_size: 256 in its config.toml, 100 "
                                          r"now\)"):
        _toy_run(catalog, out, resume=True, task={"train_size": 100})
    assert (out / CONFIG_FILE).read_bytes() == config
    _toy_run(catalog, out, resume=True, task={"train_size": 256, "features": 8})
    assert (out / SUMMARY_FILE).is_file()


def test_a_missing_table_is_one_that_sets_nothing(catalog):
    resolved = _resolved(catalog, policy={"patience": 3})
    recorded = resolved.to_toml_dict()
    del recorded["policy"], recorded["task"]
    effective = effective_config(recorded, resolved, recorded=True)
    assert effective["policy"] == {"patience": 3}
    assert effective["task"] == effective_config(resolved.to_toml_dict(), resolved, recorded=False)["task"]
