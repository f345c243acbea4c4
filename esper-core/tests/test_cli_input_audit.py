"""Bad input that used to end in a traceback, a silent fallback or a clobbered file (one test
per mechanism, not per example): output files in missing folders, outputs replacing a run
directory's own files, runs nested in another run, config values ``config.toml`` could not
hold, integers beyond what torch takes, ``RANK`` outside a torchrun launch, options tables
for components that do not exist, and plugin environment variables with unreadable values."""

from __future__ import annotations

import tomllib

import pytest
from click.testing import CliRunner

from esper_core.cli.main import build_cli
from esper_core.config import MAX_THREADS, RunConfig, dump_toml
from esper_core.errors import ConfigError
from esper_core.files import atomic_file, check_writable_file, write_json
from esper_core.options import INT_MAX, as_int
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import (
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
