"""One rule for every user-named output (esper_core.storage.outputs): an existing output is
refused unless --force, no output goes inside a run or dataset directory the command does not
read, and a telemetry sink never appends to another run's files or to an existing file unless
its run is a --resume of the one that wrote it. Every refusal leaves the files as they were."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from esper_core.cli.main import build_cli
from esper_core.config import RunConfig
from esper_core.errors import ConfigError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.outputs import check_output, check_outside_runs, check_sink_path, open_jsonl_sink
from esper_core.storage.rundir import (
    CHECKPOINTED_FILE,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    DATASET_FILE,
    EPISODES_DIR,
    LOCK_FILE,
    MODEL_FILE,
    SUMMARY_FILE,
    create_run_dir,
)
from esper_core.testing import toy


@pytest.fixture
def other_run(tmp_path):
    run = tmp_path / "other"
    (run / CHECKPOINTS_DIR).mkdir(parents=True)
    for name in (CONFIG_FILE, SUMMARY_FILE, MODEL_FILE, LOCK_FILE, "events.jsonl"):
        (run / name).write_text(f"{name} of the other run\n")
    return run


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "ds"
    (folder / EPISODES_DIR).mkdir(parents=True)
    (folder / DATASET_FILE).write_text("{}")
    return folder


def _snapshot(*roots):
    return {p: p.read_bytes() for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


def _cli(args):
    return CliRunner().invoke(build_cli(PluginSettings(autoload=False)), args)


# -- the rule itself ------------------------------------------------------------------------------


def test_an_existing_output_is_refused_unless_force(tmp_path):
    (tmp_path / "afile").write_text("kept")
    with pytest.raises(ConfigError, match=r"--out '.*afile' exists; choose another file or pass --force"):
        check_output(tmp_path / "afile")
    check_output(tmp_path / "afile", force=True)
    check_output(tmp_path / "new.json")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "report.html").write_text("kept")
    with pytest.raises(ConfigError, match="exists and is not empty; choose another directory or pass --force"):
        check_output(tmp_path / "full", directory=True)
    check_output(tmp_path / "full", directory=True, force=True)
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", directory=True)
    (tmp_path / "link").symlink_to(tmp_path / "missing")
    with pytest.raises(ConfigError, match="exists"):
        check_output(tmp_path / "link")


def test_force_never_replaces_a_file_of_a_run(other_run):
    with pytest.raises(ConfigError, match="would replace 'summary.json'"):
        check_output(other_run / SUMMARY_FILE, force=True, reads=other_run)


@pytest.mark.parametrize("inner", ["x.json", "checkpoints/x.json", "sub/x.json"])
def test_no_output_goes_inside_a_run_or_dataset_the_command_does_not_read(other_run, dataset, inner):
    for folder in (other_run, dataset):
        with pytest.raises(ConfigError, match="' is inside "):
            check_output(folder / inner)
        with pytest.raises(ConfigError, match="' is inside "):
            check_output(folder / inner, directory=True, force=True)
    with pytest.raises(ConfigError, match="is inside the run or dataset directory"):
        check_output(other_run, directory=True, force=True)  # another run's directory itself


def test_a_command_may_write_into_the_run_it_reads_but_not_where_esper_reads_back(other_run):
    check_output(other_run / "evaluation.json", reads=other_run)
    check_output(other_run / "report", directory=True, reads=other_run)
    with pytest.raises(ConfigError, match="which Esper reads back"):
        check_output(other_run / CHECKPOINTS_DIR / "figures", directory=True, reads=other_run)
    check_outside_runs(other_run.parent / "elsewhere")


# -- the commands -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["evaluate", "--policy-checkpoint", "{root}/policy.pt", "--against", "", "--out", "{target}"],
    ["export", "{root}", "--out", "{target}"],
    ["discover", "--budget", "1", "--out", "{target}"],
])
def test_a_command_refuses_an_existing_output_and_keeps_it(tmp_path, command):
    target = tmp_path / "prec.pt2"
    target.write_bytes(b"earlier")
    (tmp_path / "prec.pt2.json").write_bytes(b"{}")
    before = _snapshot(tmp_path)
    result = _cli([a.format(root=tmp_path, target=target) for a in command])
    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "--force" in result.output and "Traceback" not in result.output
    assert _snapshot(tmp_path) == before


def test_export_refuses_a_contract_that_exists_beside_a_new_file(tmp_path):
    (tmp_path / "model.bin.json").write_bytes(b"{}")
    result = _cli(["export", str(tmp_path), "--out", str(tmp_path / "model.bin")])
    assert result.exit_code == 2 and "model.bin.json' exists" in result.output
    assert (tmp_path / "model.bin.json").read_bytes() == b"{}" and not (tmp_path / "model.bin").exists()


@pytest.mark.parametrize("command", [
    ["evaluate", "--policy-checkpoint", "{root}/policy.pt", "--against", "", "--out", "{target}"],
    ["export", "{root}", "--out", "{target}"],
    ["discover", "--budget", "1", "--out", "{target}"],
])
def test_a_command_writes_nothing_inside_another_run(tmp_path, other_run, command):
    target = other_run / "sub" / "out.json"
    before = _snapshot(other_run)
    result = _cli([a.format(root=tmp_path, target=target) for a in command])
    assert result.exit_code == 2, result.output
    assert "is inside the run or dataset directory" in result.output
    assert _snapshot(other_run) == before


# -- telemetry sink paths -------------------------------------------------------------------------


def test_a_sink_path_never_points_into_another_run_or_over_an_existing_file(tmp_path, other_run, dataset):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "unrelated.json").write_text('{"a": 1}\n')
    before = _snapshot(tmp_path)
    for path, message in ((other_run / "events.jsonl", "is inside the run or dataset directory"),
                          (other_run / "new.jsonl", "is inside the run or dataset directory"),
                          (dataset / "x.jsonl", "is inside the run or dataset directory"),
                          (tmp_path / "unrelated.json", "already exists, and a run appends only to a file it wrote"),
                          (run / CONFIG_FILE, "would write into the run's own 'config.toml'"),
                          (run / CHECKPOINTS_DIR / "x", "would write into the run's own 'checkpoints'")):
        with pytest.raises(ConfigError, match=message):
            open_jsonl_sink(run_dir=run, options={"path": str(path)})
    assert _snapshot(tmp_path) == before
    # shared sinks (a database, a log folder) may use an existing path, never another run's
    check_sink_path(tmp_path / "unrelated.json", run, owner="sink", shared=True)
    with pytest.raises(ConfigError, match="is inside the run or dataset directory"):
        check_sink_path(other_run / "run.sqlite", run, owner="sink", shared=True)
    # a new file outside any run, and any new file of its own run, are fine
    open_jsonl_sink(run_dir=run, options={"path": str(tmp_path / "new.jsonl")}).close()
    open_jsonl_sink(run_dir=run, options={}).close()


@pytest.mark.parametrize("evidence", [CHECKPOINTED_FILE, SUMMARY_FILE, f"{CHECKPOINTS_DIR}/ep0000-epoch00001.pt"])
def test_a_resumed_run_appends_to_the_file_it_wrote(tmp_path, evidence):
    run = tmp_path / "run"
    (run / evidence).parent.mkdir(parents=True, exist_ok=True)
    (run / evidence).write_text("x")
    (tmp_path / "events.jsonl").write_text("{}\n")
    check_sink_path(tmp_path / "events.jsonl", run, owner="sink")


def test_an_empty_file_at_a_sink_path_is_written_but_a_link_or_folder_is_not(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "empty.jsonl").touch()
    check_sink_path(tmp_path / "empty.jsonl", run, owner="sink")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "empty.jsonl")
    for taken in ("folder", "link"):
        with pytest.raises(ConfigError, match="already exists, and a run appends only"):
            check_sink_path(tmp_path / taken, run, owner="sink")


@pytest.fixture(scope="module")
def catalog():
    from engine_helpers import Germinating

    from esper_core import hookimpl
    from esper_core.contracts import PolicySpec, SinkSpec

    class Resumable(Germinating):  # a checkpointed run resumes only with a policy that keeps state
        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    class Policies:
        @hookimpl
        def esper_register_policies(self):
            return [PolicySpec(name="germinating", factory=Resumable, description="test")]

        @hookimpl
        def esper_register_telemetry_sinks(self):
            def refuse(*, run_dir, options):
                raise ConfigError("telemetry sink 'refusing': path is taken")

            return [SinkSpec(name="refusing", factory=refuse, description="test")]

    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("p", Policies())]))


def _run(catalog, out, *, resume=False, sinks=("jsonl",), **telemetry):
    from esper_core.tolaria.job import execute_run

    if not resume:
        create_run_dir(out)
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "germinating", "epochs": 3,
                                          "compare_baseline": False, "out": str(out), "telemetry": list(sinks)},
                                  "telemetry": {"jsonl": telemetry}})
    return execute_run(resolve_run(config, catalog), catalog, out, resume=resume)


def test_a_run_never_appends_to_another_runs_events_and_a_resume_appends_to_its_own(catalog, tmp_path):
    first, shared = tmp_path / "first", tmp_path / "events.jsonl"
    _run(catalog, first, path=str(shared))
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match="already exists, and a run appends only"):
        _run(catalog, tmp_path / "second", path=str(shared))
    with pytest.raises(ConfigError, match="is inside the run or dataset directory"):
        _run(catalog, tmp_path / "third", path=str(first / "events.jsonl"))
    after = _snapshot(tmp_path)
    assert {p: after[p] for p in before} == before, "nothing already written changed"
    # the run the file belongs to continues it
    resumed = tmp_path / "resumed"
    shutil.copytree(first, resumed)
    for name in (SUMMARY_FILE, MODEL_FILE):
        (resumed / name).unlink()
    _run(catalog, resumed, resume=True, path=str(shared))
    assert shared.read_bytes().startswith(before[shared][:100])


def test_a_run_refused_by_a_later_sink_can_be_run_again_once_that_sink_is_fixed(catalog, tmp_path):
    # the jsonl sink opens (creating its file) before the next sink refuses to start
    events = tmp_path / "events.jsonl"
    with pytest.raises(ConfigError, match="'refusing': path is taken"):
        _run(catalog, tmp_path / "first", sinks=("jsonl", "refusing"), path=str(events))
    assert events.is_file() and events.stat().st_size == 0
    _run(catalog, tmp_path / "second", path=str(events))
    assert events.stat().st_size > 0
