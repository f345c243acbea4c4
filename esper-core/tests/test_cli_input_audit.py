"""Bad input that used to end in a traceback, a silent fallback or a clobbered file (one test
per mechanism, not per example): output files in missing folders, outputs replacing a run
directory's own files, runs nested in another run, config values ``config.toml`` could not
hold, integers beyond what torch takes, ``RANK`` outside a torchrun launch, options tables
for components that do not exist, and plugin environment variables with unreadable values."""

from __future__ import annotations

import re
import tomllib

import pytest
from click.testing import CliRunner

from esper_core.cli.main import build_cli
from esper_core.cli.params import PathParam, param_label
from esper_core.config import MAX_THREADS, RunConfig, dump_toml
from esper_core.errors import ConfigError
from esper_core.files import atomic_file, check_writable_file, write_json
from esper_core.options import INT_MAX, as_int
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import (
    CHECKPOINTED_FILE,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    LOCK_FILE,
    MODEL_FILE,
    SUMMARY_FILE,
    check_output_file,
    create_run_dir,
    refuse_run_files,
)
from esper_core.testing import toy

# -- output files ------------------------------------------------------------------------------


def test_an_output_file_in_missing_folders_is_written_there(tmp_path):
    # check_writable_file accepts a path whose folders do not exist yet (evaluate, export and
    # discover --out); the write must then create them instead of failing after the work.
    target = tmp_path / "a" / "b" / "out.json"
    check_writable_file(target)
    write_json(target, {"ok": 1})
    assert target.read_text() == '{\n  "ok": 1\n}\n'
    with atomic_file(tmp_path / "c" / "d.bin") as handle:
        handle.write(b"x")
    assert (tmp_path / "c" / "d.bin").read_bytes() == b"x"


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    (run / CHECKPOINTS_DIR).mkdir(parents=True)
    for name in (CONFIG_FILE, SUMMARY_FILE, MODEL_FILE, LOCK_FILE, "events.jsonl", "policy.pt", "telemetry.db"):
        (run / name).write_text("kept")
    (run / CHECKPOINTS_DIR / "ep0000-epoch00001.pt").write_text("kept")
    (run / "earlier.pt2").write_text("export")
    (run / "earlier.pt2.json").write_text("{}")
    return run


@pytest.mark.parametrize("name", [CONFIG_FILE, SUMMARY_FILE, MODEL_FILE, LOCK_FILE, "events.jsonl", "policy.pt",
                                  "telemetry.db"])
def test_an_output_file_never_replaces_a_file_of_a_run_directory(run_dir, name):
    with pytest.raises(ConfigError, match=rf"--out '.*{name}' would replace '{name}' of the run"):
        check_output_file(run_dir / name)
    assert (run_dir / name).read_text() == "kept"


@pytest.mark.parametrize("inner", [f"{CHECKPOINTS_DIR}/ep9999-epoch99999.pt", f"{CHECKPOINTS_DIR}/new.json",
                                   "episodes/000001.pt"])
def test_an_output_file_never_goes_where_esper_reads_back(run_dir, inner):
    with pytest.raises(ConfigError, match="which Esper reads back"):
        check_output_file(run_dir / inner)


def test_an_output_file_may_add_to_a_run_directory_or_replace_an_earlier_export(run_dir):
    check_output_file(run_dir / "evaluation.json")  # a new file
    check_output_file(run_dir / "earlier.pt2")  # an export with its contract beside it
    check_output_file(run_dir / "earlier.pt2.json")
    check_output_file(run_dir.parent / "elsewhere.json")  # outside any run directory


def test_an_export_never_writes_its_contract_over_a_run_file(run_dir):
    # `esper export RUN --out RUN/summary` would put its contract on RUN/summary.json.
    with pytest.raises(ConfigError, match="would replace 'summary.json'"):
        refuse_run_files(run_dir / "summary.json")
    refuse_run_files(run_dir / "model.pt2", replaceable=(run_dir / "model.pt2",))


def test_a_run_is_never_created_inside_another_run_directory(run_dir):
    for inner in ("sub", "checkpoints/ep9999-epoch99999.pt", "a/b"):
        with pytest.raises(ConfigError, match="is inside the run or dataset directory"):
            create_run_dir(run_dir / inner)
    assert not (run_dir / "sub").exists() and not (run_dir / "a").exists()


def test_a_project_folder_with_its_own_config_toml_is_not_a_run_directory(tmp_path):
    # Users keep the file they pass to --config at the top of a project and write runs below it.
    (tmp_path / CONFIG_FILE).write_text("[run]\n")
    (tmp_path / "eval.json").write_text("{}")
    assert create_run_dir(tmp_path / "runs" / "first").is_dir()
    check_output_file(tmp_path / "eval.json")  # an ordinary file there may be replaced
    (tmp_path / CHECKPOINTS_DIR).mkdir()  # now it is a run's config, beside the run's checkpoints
    with pytest.raises(ConfigError, match="would replace 'config.toml'"):
        check_output_file(tmp_path / CONFIG_FILE)


def test_a_dataset_directory_is_recognised_without_its_lock(tmp_path):
    (tmp_path / "dataset.json").write_text("{}")
    (tmp_path / "episodes").mkdir()
    with pytest.raises(ConfigError, match="would replace 'dataset.json' of the run or dataset directory"):
        check_output_file(tmp_path / "dataset.json")
    with pytest.raises(ConfigError, match="which Esper reads back"):
        check_output_file(tmp_path / "episodes" / "000009.pt")


# -- values config.toml must hold --------------------------------------------------------------


@pytest.mark.parametrize("text", ["/tmp/a\nb", 'quote " and \\ back', "tab\tbell\x07del\x7f", "é ∑ 😀", "cr\rff\f"])
def test_every_string_esper_writes_to_config_toml_reads_back_the_same(text):
    data = {"run": {"out": text, "list": [text, 1, 2.5, True]}, "telemetry": {"odd key": {text: text}}}
    assert tomllib.loads(dump_toml(data)) == data


def test_a_string_toml_cannot_hold_is_a_config_error_not_a_traceback():
    with pytest.raises(ConfigError, match="not valid Unicode text"):
        dump_toml({"run": {"out": "bad\udcffname"}})


# -- integers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value"), [("seed", 2**64), ("seed", 10**20), ("epochs", INT_MAX + 1),
                                            ("threads", MAX_THREADS + 1), ("threads", 2**64),
                                            ("param_budget", 10**30)])
def test_an_integer_beyond_what_torch_takes_is_refused_by_name(key, value):
    with pytest.raises(ConfigError, match=rf"\[run\] {key} = {value} is invalid; expected an integer ≥ \d+ and ≤"):
        RunConfig.from_dict({"run": {key: value}})


def test_the_largest_allowed_integers_pass():
    config = RunConfig.from_dict({"run": {"seed": INT_MAX, "threads": MAX_THREADS}})
    assert (config.seed, config.threads) == (INT_MAX, MAX_THREADS)
    assert as_int(1)(str(INT_MAX)) == INT_MAX
    with pytest.raises(ConfigError, match="≤ 9223372036854775807"):
        as_int(1)(str(INT_MAX + 1))


def test_discover_refuses_more_threads_than_torch_survives():
    result = CliRunner().invoke(build_cli(PluginSettings(autoload=False)),
                                ["discover", "--threads", str(MAX_THREADS + 1)])
    assert result.exit_code == 2 and "--threads" in result.output and "Traceback" not in result.output


def test_a_blank_path_is_refused():
    for key in ("out", "blueprint_library"):
        with pytest.raises(ConfigError, match=rf"\[run\] {key} = '   ' is invalid; expected a path"):
            RunConfig.from_dict({"run": {key: "   "}})


# -- RANK ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "message"), [
    ({"RANK": "abc"}, "RANK='abc' is not an integer"),
    ({"RANK": "1"}, r"RANK='1' is outside 0\.\.0 \(WORLD_SIZE=unset\)"),
    ({"RANK": "-1", "WORLD_SIZE": "2"}, r"RANK='-1' is outside 0\.\.1"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, r"RANK='2' is outside 0\.\.1"),
])
def test_a_rank_that_would_drop_the_run_directory_is_refused(monkeypatch, env, message):
    from esper_core.tolaria.distributed_run import launch_rank

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        launch_rank()


def test_a_rank_under_a_launch_is_read(monkeypatch):
    from esper_core.tolaria.distributed_run import launch_rank

    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launch_rank() == 0
    monkeypatch.setenv("RANK", "0")
    assert launch_rank() == 0
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launch_rank() == 1


# -- options tables for components that do not exist ---------------------------------------------


@pytest.fixture(scope="module")
def catalog():
    from engine_helpers import Germinating

    from esper_core import hookimpl
    from esper_core.contracts import PolicySpec

    class Policies:
        @hookimpl
        def esper_register_policies(self):
            return [PolicySpec(name="germinating", factory=Germinating, description="test")]

    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("p", Policies())]))


@pytest.mark.parametrize(("table", "kind"), [("telemetry", "telemetry sink"), ("observers", "observer")])
def test_an_options_table_for_an_unknown_component_is_refused(catalog, table, kind):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "germinating"}, table: {"jsnl": {"max_bytes": 10}}})
    with pytest.raises(ConfigError, match=rf"\[{table}\.jsnl\]: unknown {kind} 'jsnl'"):
        resolve_run(config, catalog)


def test_an_options_table_for_an_installed_sink_left_out_is_kept(catalog):
    # evaluation and `esper collect` run a training config with its sinks switched off
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "germinating", "telemetry": []},
                                  "telemetry": {"jsonl": {"max_bytes": 10}}})
    assert resolve_run(config, catalog).sinks == ()


# -- plugin environment variables ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ESPER_DISABLE_PLUGIN_AUTOLOAD", "ESPER_STRICT_PLUGINS", "ESPER_TRACE_HOOKS"])
def test_an_on_off_variable_with_another_value_is_refused(name):
    with pytest.raises(ConfigError, match=rf"{name}='2' is invalid; expected one of 1, on, true, yes"):
        PluginSettings.from_env({name: "2"})
    assert PluginSettings.from_env({name: " Off "}) == PluginSettings.from_env({})


def test_esper_plugins_naming_no_installed_plugin_is_refused():
    with pytest.raises(ConfigError, match="ESPER_PLUGINS names 'no-such-plugin', which no installed plugin is"):
        load_plugins(PluginSettings(allow=("no-such-plugin",)))
    assert load_plugins(PluginSettings(allow=("toy",)), extra=[("toy", toy)]).failures == []


def test_a_bad_plugin_variable_is_one_line_through_the_cli(monkeypatch):
    from esper_core.cli.main import main

    monkeypatch.setenv("ESPER_TRACE_HOOKS", "maybe")
    monkeypatch.setattr("sys.argv", ["esper", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2


# -- lists of names: one parser, no blank item dropped ---------------------------------------------


@pytest.mark.parametrize(("value", "got"), [(",", r"a blank entry \(item 1\)"), ("a,,b", r"a blank entry \(item 2\)"),
                                            ("a, ", r"a blank entry \(item 2\)"), ("", "none"), ("  ", "none")])
def test_a_list_option_with_a_blank_item_or_no_item_names_the_option(tmp_path, value, got):
    # Each used to be read as fewer names (none at all for ',' and ''): evaluate compared the
    # policy with nothing, discover searched fewer tasks, a run had no slots.
    cli = build_cli(PluginSettings(autoload=False))
    cases = [(["discover", "--tasks", value, "--out", str(tmp_path / "lib.json")], "--tasks", "one or more "),
             (["run", "--slots", value, "--out", str(tmp_path / "r")], r"\[run\] slots =", "one or more "),
             (["run", "--blueprints", value, "--out", str(tmp_path / "r")], r"\[run\] blueprints =", "one or more ")]
    if value.strip():  # evaluate --against '' is a choice: compare with no other policy
        cases.append((["evaluate", "--policy-checkpoint", "p.pt", "--against", value], "--against", ""))
    for args, what, how_many in cases:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert re.search(rf"Error: {what} '{value}' is invalid; expected {how_many}comma-separated "
                         rf"[a-z ]+ names( \('' for none\))?, got {got}", result.output), result.output


def test_discover_refuses_a_task_named_twice(tmp_path):
    result = CliRunner().invoke(build_cli(PluginSettings(autoload=False)),
                                ["discover", "--tasks", "xor,xor", "--out", str(tmp_path / "lib.json")])
    assert result.exit_code == 2 and not (tmp_path / "lib.json").exists()
    assert "--tasks 'xor,xor' is invalid; expected distinct task names, got 'xor' twice (items 1 and 2)" \
        in result.output


def test_evaluate_against_nothing_is_a_choice_not_an_error(tmp_path):
    # The benchmarks evaluate a second variant alone on episodes the behaviour policies already ran.
    result = CliRunner().invoke(build_cli(PluginSettings(autoload=False)),
                                ["evaluate", "--policy-checkpoint", str(tmp_path / "missing.pt"), "--against", ""])
    assert result.exit_code == 2 and "--against" not in result.output, result.output
    assert "missing.pt" in result.output


@pytest.mark.parametrize(("key", "value", "message"), [
    ("slots", "", r"\[run\] slots = '' is invalid; expected one or more comma-separated slot names, got none"),
    ("slots", [], r"\[run\] slots = \[\] is invalid; expected a non-empty list of slot names, got none"),
    ("slots", ["block1", " "], r"expected a non-empty list of slot names, got a blank entry \(item 2\)"),
    ("blueprints", [], r"\[run\] blueprints = \[\] is invalid; expected a non-empty list of blueprint names"),
    ("telemetry", "jsonl,", r"\[run\] telemetry = 'jsonl,' is invalid; expected comma-separated telemetry sinks "
                            r"\('' for none\), got a blank entry \(item 2\)"),
    ("observers", ["a", ""], r"\[run\] observers = \['a', ''\] is invalid; expected a list of observers"),
])
def test_a_blank_name_in_a_config_list_is_refused_by_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({"run": {key: value}})


def test_a_config_file_with_blank_slots_is_refused_through_the_cli(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[run]\nslots = ""\n')
    result = CliRunner().invoke(build_cli(PluginSettings(autoload=False)),
                                ["run", "--config", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "[run] slots = '' is invalid" in result.output
    assert not (tmp_path / "out").exists()


def test_no_sinks_and_no_observers_stay_explicit_choices():
    # `esper collect` and `--observers ''` switch them off on purpose; names are stripped.
    config = RunConfig.from_dict({"run": {"telemetry": "", "observers": [], "slots": " block1 , block2"}})
    assert (config.telemetry, config.observers, config.slots) == ((), (), ("block1", "block2"))
    assert RunConfig.from_dict({"run": {"telemetry": [], "observers": " "}}).observers == ()


def test_a_task_default_of_no_slot_is_refused():
    from esper_core.contracts.run_defaults import RunDefaults

    with pytest.raises(ConfigError, match=r"task 'toy' defaults option 'slots' = \[\] is invalid; expected a "
                                          r"non-empty list of slot names, got none"):
        RunDefaults.from_mapping({"slots": []}, owner="task 'toy' defaults")
    with pytest.raises(ConfigError, match="got a blank entry"):
        RunDefaults(slots=("block1", ""))
    assert RunDefaults(blueprints=()).blueprints == ()  # every blueprint of the topology


@pytest.mark.parametrize("value", [",", "toy,,core", "toy,"])
def test_esper_plugins_with_a_blank_name_is_refused(value):
    with pytest.raises(ConfigError, match=rf"ESPER_PLUGINS='{value}' is invalid; expected one or more comma-separated "
                                          r"plugin names, got a blank entry"):
        PluginSettings.from_env({"ESPER_PLUGINS": value})
    assert PluginSettings.from_env({"ESPER_PLUGINS": " toy , core "}).allow == ("toy", "core")
    assert PluginSettings.from_env({"ESPER_PLUGINS": "  "}).allow is None  # unset: every plugin


# -- options tables of installed components the run leaves out -------------------------------------


@pytest.mark.parametrize("sinks", [[], ["jsonl"]])
@pytest.mark.parametrize(("options", "message"), [
    ({"max_byts": 10}, r"telemetry sink 'jsonl': unknown option 'max_byts' \(did you mean 'max_bytes'\?\)"),
    ({"max_bytes": 0}, r"telemetry sink 'jsonl' option 'max_bytes' = 0 is invalid; expected an integer ≥ 1"),
])
def test_an_options_table_is_checked_whether_or_not_the_run_enables_the_component(catalog, sinks, options, message):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "germinating", "telemetry": sinks},
                                  "telemetry": {"jsonl": options}})
    with pytest.raises(ConfigError, match=message):
        resolve_run(config, catalog)


def test_declared_observer_options_are_checked_too():
    from attrs import frozen

    from esper_core import hookimpl
    from esper_core.contracts.specs import ObserverSpec
    from esper_core.lazy import lazy

    @frozen(kw_only=True)
    class Options:
        window: int = 3

    class Observers:
        @hookimpl
        def esper_register_observers(self):
            return [ObserverSpec(name="watch", factory=print, description="test", options=Options),
                    ObserverSpec(name="lazy_watch", factory=print, description="test",
                                 options=lazy("esper_core.telemetry.jsonl:JsonlOptions"))]

    from engine_helpers import _policies_plugin

    catalog = build_catalog(load_plugins(PluginSettings(autoload=False),
                                         extra=[("toy", toy), ("p", _policies_plugin()), ("o", Observers())]))
    run = {"task": "toy", "policy": "scripted", "observers": []}
    with pytest.raises(ConfigError, match=r"observer 'watch': unknown option 'windw' \(did you mean 'window'\?\)"):
        resolve_run(RunConfig.from_dict({"run": run, "observers": {"watch": {"windw": 2}}}), catalog)
    with pytest.raises(ConfigError, match=r"observer 'lazy_watch': unknown option 'max_byte'"):
        resolve_run(RunConfig.from_dict({"run": run, "observers": {"lazy_watch": {"max_byte": 2}}}), catalog)
    resolve_run(RunConfig.from_dict({"run": run, "observers": {"watch": {"window": 2}}}), catalog)


# -- resume of a run whose checkpoints are gone ------------------------------------------------------


def _toy_run(catalog, out, *, resume=False, **run):
    from esper_core.tolaria.job import execute_run

    if not resume:
        create_run_dir(out)
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "germinating", "epochs": 3,
                                          "compare_baseline": False, "out": str(out), **run}})
    return execute_run(resolve_run(config, catalog), catalog, out, resume=resume)


@pytest.fixture(scope="module")
def finished_run(catalog, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    _toy_run(catalog, out)
    return out


def _unfinished_copy(finished_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    for name in (SUMMARY_FILE, MODEL_FILE):
        (out / name).unlink()
    return out


def test_a_resume_whose_checkpoints_were_deleted_is_refused_and_keeps_the_events(catalog, finished_run, tmp_path):
    import shutil

    from esper_core.errors import CheckpointError

    out = _unfinished_copy(finished_run, tmp_path)
    shutil.rmtree(out / CHECKPOINTS_DIR)
    (out / CHECKPOINTED_FILE).unlink()  # as in a run from before the marker: the events show it
    events, config = (out / "events.jsonl").read_bytes(), (out / CONFIG_FILE).read_bytes()
    with pytest.raises(CheckpointError, match=r"refused: the run's checkpoints are missing \('.*events.jsonl' records "
                                              r"epoch 3 of episode 0, after the first checkpoint\); starting over "
                                              r"would overwrite what it recorded"):
        _toy_run(catalog, out, resume=True)
    assert (out / "events.jsonl").read_bytes() == events and (out / CONFIG_FILE).read_bytes() == config

    from esper_core.cli.app import AppState
    from esper_core.cli.run_cmd import run_command

    result = CliRunner().invoke(run_command, ["--resume", str(out)],
                                obj=AppState(PluginSettings(autoload=False), _catalog=catalog))
    assert isinstance(result.exception, CheckpointError) and "checkpoints are missing" in str(result.exception)
    assert (out / "events.jsonl").read_bytes() == events and (out / CONFIG_FILE).read_bytes() == config


def test_an_emptied_checkpoints_folder_is_refused_without_events(catalog, tmp_path):
    from esper_core.errors import CheckpointError

    out = tmp_path / "run"
    _toy_run(catalog, out, telemetry=[])
    for name in (SUMMARY_FILE, MODEL_FILE):
        (out / name).unlink()
    for path in (out / CHECKPOINTS_DIR).iterdir():
        path.unlink()
    (out / CHECKPOINTED_FILE).unlink()  # a run from before the marker
    with pytest.raises(CheckpointError, match=r"checkpoints are missing \(checkpoints/ is empty, and only a "
                                              r"checkpoint creates it\)"):
        _toy_run(catalog, out, resume=True, telemetry=[])


def test_a_resume_without_events_or_checkpoints_is_refused_by_the_marker_of_the_first(catalog, tmp_path):
    import shutil

    from esper_core.errors import CheckpointError

    out = tmp_path / "run"
    _toy_run(catalog, out, telemetry=[])  # no events file: only the marker shows it checkpointed
    for name in (SUMMARY_FILE, MODEL_FILE):
        (out / name).unlink()
    shutil.rmtree(out / CHECKPOINTS_DIR)
    assert not (out / "events.jsonl").exists()
    config = (out / CONFIG_FILE).read_bytes()
    with pytest.raises(CheckpointError, match=r"checkpoints are missing \(\.esper\.checkpointed is there, and only "
                                              r"its first checkpoint writes it\); starting over would overwrite"):
        _toy_run(catalog, out, resume=True, telemetry=[])
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINTED_FILE, CONFIG_FILE]
    assert (out / CONFIG_FILE).read_bytes() == config


def test_a_run_stopped_before_its_first_checkpoint_still_starts_over(catalog, finished_run, tmp_path):
    import shutil

    out = _unfinished_copy(finished_run, tmp_path)
    shutil.rmtree(out / CHECKPOINTS_DIR)
    (out / CHECKPOINTED_FILE).unlink()  # written with the first checkpoint, so never there
    # Killed after epoch 1's event, before its checkpoint was written (and a first write cut
    # short leaves its temporary file in checkpoints/).
    lines = (out / "events.jsonl").read_text().splitlines(keepends=True)
    first_epoch = next(i for i, line in enumerate(lines) if '"kind": "epoch"' in line)
    (out / "events.jsonl").write_text("".join(lines[:first_epoch + 1]))
    (out / CHECKPOINTS_DIR).mkdir()
    (out / CHECKPOINTS_DIR / ".ep0000-epoch00001.pt.0123456789ab.tmp").write_bytes(b"partial")
    summary = _toy_run(catalog, out, resume=True)
    assert summary["epochs"] == 3 and (out / SUMMARY_FILE).is_file()


# -- export: nothing written unless the exported model passes its check -----------------------------


def _differing_fold(monkeypatch):
    from torch import nn

    from esper_core.storage import export as export_module

    class Shift(nn.Module):
        def forward(self, x):
            return x + 1.0

    fold = export_module.fold
    monkeypatch.setattr(export_module, "fold", lambda model: nn.Sequential(*fold(model), Shift()).eval())


@pytest.mark.parametrize("fmt", ["state-dict", "torch-export"])
def test_an_export_that_fails_its_check_writes_nothing(catalog, finished_run, tmp_path, monkeypatch, fmt):
    from esper_core.errors import CheckpointError
    from esper_core.storage.export import export_model

    _differing_fold(monkeypatch)
    target = tmp_path / "out" / "model.bin"
    with pytest.raises(CheckpointError, match=r"the exported model differs from the run's model by .* on the example "
                                              r"batch; nothing was written"):
        export_model(finished_run, catalog, fmt=fmt, out=target)
    assert not target.exists() and not (tmp_path / "out" / "model.bin.json").exists()
    assert not list((tmp_path / "out").iterdir()), "no temporary file left"


def test_an_export_that_fails_its_check_keeps_the_earlier_export(catalog, finished_run, tmp_path, monkeypatch):
    import shutil

    from esper_core.cli.app import AppState
    from esper_core.cli.export_cmd import export_command

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "model.pt2").write_bytes(b"earlier export")
    (run / "model.pt2.json").write_text("{}")
    _differing_fold(monkeypatch)
    result = CliRunner().invoke(export_command, [str(run)], obj=AppState(PluginSettings(autoload=False),
                                                                          _catalog=catalog))
    assert "differs from the run's model" in str(result.exception)
    assert (run / "model.pt2").read_bytes() == b"earlier export" and (run / "model.pt2.json").read_text() == "{}"
    assert sorted(p.name for p in run.iterdir()) == sorted([p.name for p in finished_run.iterdir()]
                                                           + ["model.pt2", "model.pt2.json"]), "no temporary file"


# -- path parameters: '' is not the working directory ---------------------------------------------


def _path_parameters():
    """(command words, parameter) for every click.Path parameter of every command, core's and the
    installed plugins' (collect, report, runs ...)."""
    import click

    cli = build_cli(PluginSettings())
    ctx = click.Context(cli)
    cli.ensure_plugin_commands()
    found = []

    def walk(command, words):
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*words, name])
            return
        found.extend((words, p) for p in command.params if isinstance(p.type, click.Path))

    for name in cli.list_commands(ctx):
        walk(cli.get_command(ctx, name), [name])
    return found


def _refused(tmp_path, words, param, value):
    args = [*words, *(() if param.param_type_name == "argument" else (max(param.opts, key=len),)), value]
    result = CliRunner().invoke(build_cli(PluginSettings()), args)
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert len(result.output.strip().splitlines()) == 1, (args, result.output)
    assert result.output.startswith(f"Error: {param_label(param)} "), (args, result.output)
    assert list(tmp_path.iterdir()) == [], args  # nothing written where '' used to point
    return result.output


def test_every_path_parameter_refuses_an_empty_or_blank_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = _path_parameters()
    named = {(" ".join(words), param_label(p)) for words, p in params}
    assert {("collect", "--out"), ("report", "--out"), ("report", "RUN_DIR"), ("runs list", "--db"),
            ("runs show", "RUN"), ("runs compare", "RUN"), ("new-plugin", "--dir"), ("export", "RUN_DIR"),
            ("export", "--out"), ("run", "--config"), ("run", "--resume"), ("run", "--policy-checkpoint"),
            ("evaluate", "--out"), ("discover", "--out"), ("collect", "--config")} <= named
    for words, param in params:
        assert isinstance(param.type, PathParam), (words, param.name)
        assert _refused(tmp_path, words, param, "").endswith(" '' is empty; expected a path\n")
        assert _refused(tmp_path, words, param, "  ").endswith(" '  ' is blank; expected a path\n")
        assert "at most 255" in _refused(tmp_path, words, param, "d/" + "a" * 256)


def test_a_file_path_spelled_as_a_directory_is_refused(tmp_path, monkeypatch):
    # `export RUN --out sub/` wrote a file named sub; `--format state-dict --out ''` crashed
    monkeypatch.chdir(tmp_path)
    files = [(words, p) for words, p in _path_parameters() if not p.type.dir_okay]
    assert {(" ".join(w), p.name) for w, p in files} >= {("export", "out"), ("evaluate", "out"), ("discover", "out"),
                                                         ("run", "config_path"), ("collect", "policy_checkpoint")}
    for words, param in files:
        for value in ("sub/", ".", "a/..", "a/./"):
            output = _refused(tmp_path, words, param, value)
            assert output.endswith(f" {value!r} names a directory; expected a file path\n"), output
    result = CliRunner().invoke(build_cli(PluginSettings()), ["export", "RUN", "--format", "state-dict",
                                                              "--out", ""])
    assert (result.exit_code, result.output) == (2, "Error: --out '' is empty; expected a path\n")


def test_a_plugin_command_declared_with_plain_click_path_is_checked_too():
    import click

    from esper_core.cli.errors import EsperGroup

    @click.command("mine")
    @click.option("--out", type=click.Path(dir_okay=False, writable=True), default=None)
    def mine(out):
        click.echo(f"out={out}")

    group = EsperGroup("esper")
    group.add_command(mine)
    assert isinstance(mine.params[0].type, PathParam) and mine.params[0].type.writable
    result = CliRunner().invoke(group, ["mine", "--out", ""])
    assert (result.exit_code, result.output) == (2, "Error: --out '' is empty; expected a path\n")
    assert CliRunner().invoke(group, ["mine", "--out", "f.json"]).output == "out=f.json\n"


# -- counts: every one has a maximum, checked before any work -----------------------------------


def test_epochs_have_a_maximum():
    from esper_core.options import MAX_EPOCHS

    with pytest.raises(ConfigError, match=rf"\[run\] epochs = {MAX_EPOCHS + 1} is invalid; expected an integer "
                                          rf"≥ 1 and ≤ {MAX_EPOCHS}$"):
        RunConfig.from_dict({"run": {"epochs": MAX_EPOCHS + 1}})
    with pytest.raises(ConfigError, match=rf"\[training\] lr_step_epoch = {MAX_EPOCHS + 1} is invalid"):
        RunConfig.from_dict({"training": {"lr_step_epoch": MAX_EPOCHS + 1}})
    assert RunConfig.from_dict({"run": {"epochs": MAX_EPOCHS}}).epochs == MAX_EPOCHS


def test_run_refuses_an_epoch_count_that_would_run_forever(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(build_cli(PluginSettings(autoload=False)), [
        "run", "--task", "toy", "--epochs", str(INT_MAX), "--no-compare-baseline"])
    assert result.exit_code == 2 and result.output == (
        f"Error: [run] epochs = {INT_MAX} is invalid; expected an integer ≥ 1 and ≤ 100000\n"), result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("flag", "value"), [("--steps", 10**12), ("--budget", 10**9), ("--hall-of-fame", 10**9),
                                             ("--library-size", 10**9), ("--seed", INT_MAX + 1),
                                             ("--batch-size", 1025), ("--threads", MAX_THREADS + 1)])
def test_every_discover_count_has_a_maximum(tmp_path, monkeypatch, flag, value):
    # --steps 10**12 crashed allocating 36 TB; --budget 10**12 would run until killed
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(build_cli(PluginSettings(autoload=False)), [
        "discover", "--budget", "2", "--batch-size", "2", "--tasks", "xor", flag, str(value), "--out", "f.json"])
    assert result.exit_code == 2 and f"Invalid value for '{flag}': {value} is not in the range" in result.output
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []
