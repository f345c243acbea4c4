from __future__ import annotations

import json
import sqlite3

import attrs
import pytest
from click.testing import CliRunner

from esper_core.contracts.events import RunEnded, RunStarted
from esper_core.errors import EsperError
from esper_telemetry import queries
from esper_telemetry.commands import runs
from esper_telemetry.sinks.sqlite import SqliteSink


@pytest.fixture
def shared_db(tmp_path, run_factory):
    path = tmp_path / "runs.sqlite"
    for run_id, policy, offset, start in (("run-a", "heuristic", 0.0, 1_700_000_000.0),
                                           ("run-b", "random", -3.1, 1_700_100_000.0)):
        sink = SqliteSink(path)
        for event in run_factory(run_id, policy=policy, accuracy_offset=offset, start=start):
            sink.emit(event)
        sink.close()
    return path


def invoke(*args: str):
    return CliRunner().invoke(runs, list(args))


def _row(output: str, first_cell: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(first_cell))


def test_list(shared_db):
    result = invoke("list", "--db", str(shared_db))
    assert result.exit_code == 0, result.output
    header, rule, *rows = result.output.splitlines()
    assert header.split()[:3] == ["run", "task", "policy"]
    assert [r.split()[0] for r in rows] == ["run-a", "run-b"]
    cells = _row(result.output, "run-b")
    # Held-out test accuracy leads, with the baseline's and the gain over it; the validation
    # figures follow, labelled val.
    assert header.split()[6:16] == ["test", "%", "base", "test", "%", "test", "gain", "val",
                                    "final", "%"]
    assert cells[1:11] == ["procedural", "random", "7", "finished", "10", "49.00", "49.30",
                           "-0.30", "51.30", "51.30"]
    assert "24,650" in cells and "1/1/0" in cells
    # Numeric columns are right-aligned under their header.
    end = header.index("test %") + len("test %")
    assert rows[1].index("49.00") + len("49.00") == end
    end = header.index("val final %") + len("val final %")
    assert rows[1].index("51.30") + len("51.30") == end
    assert set(rule) == {"-", " "}


def test_show_prints_results_seeds_and_epochs(shared_db):
    result = invoke("show", "run-a", "--db", str(shared_db))
    assert result.exit_code == 0, result.output
    out = result.output
    assert _row(out, "test accuracy") == ["test", "accuracy", "52.10"]
    assert _row(out, "baseline test accuracy")[-1] == "49.30"
    assert _row(out, "test gain over baseline")[-1] == "+2.80"
    assert _row(out, "val final accuracy") == ["val", "final", "accuracy", "54.40"]
    assert _row(out, "baseline val accuracy")[-1] == "50.00"
    assert not any(line.startswith(("final accuracy", "baseline accuracy"))
                   for line in out.splitlines())
    assert "test: the held-out split no controller or gate saw" in out
    assert _row(out, "rollbacks") == ["rollbacks", "1"]
    # Both seed measures, each named: gain in TRAINING, dependence on removal.
    assert "gain (TRAINING)  dependence" in out
    assert _row(out, "      0  r0") == ["0", "r0", "cnn:conv_light", "3", "10", "fossilized",
                                        "+0.70", "+2.60"]
    assert _row(out, "      0  r1")[-2:] == ["-0.20", "-"]
    assert "dependence: accuracy lost when the seed is removed" in out
    assert _row(out, "cnn:attention") == ["cnn:attention", "0", "1", "0"]
    assert _row(out, "   10")[:4] == ["10", "1.1000", "1.2000", "54.40"]
    # The gradient_health observer's score per epoch (unhealthy at the rollback epoch 6).
    assert "grad health" in out
    assert _row(out, "    6")[-1] == "0.60" and _row(out, "   10")[-1] == "1.00"


def test_compare_aligns_runs_side_by_side(shared_db):
    result = invoke("compare", "run-a", "run-b", "--db", str(shared_db))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split() == ["run-a", "run-b"]
    labels = [line.split("  ")[0] for line in result.output.splitlines()[2:]]
    assert labels[5:13] == ["test accuracy %", "baseline test accuracy %",
                            "test gain over baseline", "Δ test vs first", "val final accuracy %",
                            "Δ val final vs first", "val best accuracy %",
                            "baseline val accuracy %"]
    assert _row(result.output, "test accuracy %")[-2:] == ["52.10", "49.00"]
    assert _row(result.output, "test gain over baseline")[-2:] == ["+2.80", "-0.30"]
    assert _row(result.output, "Δ test vs first")[-2:] == ["+0.00", "-3.10"]
    assert _row(result.output, "val final accuracy %")[-2:] == ["54.40", "51.30"]
    assert _row(result.output, "Δ val final vs first")[-2:] == ["+0.00", "-3.10"]
    assert "warning" not in result.output  # same task
    assert _row(result.output, "cnn:conv_light F/C/L")[-2:] == ["1/0/0", "1/0/0"]
    assert _row(result.output, "policy")[-2:] == ["heuristic", "random"]


def test_compare_across_tasks_warns_that_the_delta_compares_different_tasks(tmp_path,
                                                                            run_factory):
    path = tmp_path / "runs.sqlite"
    sink = SqliteSink(path)
    for run_id, task in (("run-a", "procedural"), ("run-c", "cifar10")):
        for event in run_factory(run_id):
            if isinstance(event, RunStarted):
                event = attrs.evolve(event, task=task)
            elif isinstance(event, RunEnded):
                event = attrs.evolve(event, summary={**event.summary, "task": task})
            sink.emit(event)
    sink.close()
    result = invoke("compare", "run-a", "run-c", "--db", str(path))
    assert result.exit_code == 0, result.output
    assert _row(result.output, "task")[-2:] == ["procedural", "cifar10"]
    assert ("warning: these runs are on different tasks (procedural, cifar10); the Δ rows "
            "compare accuracies of different tasks") in result.stderr
    assert "warning" not in result.stdout  # the table itself stays clean for scripts


def test_unknown_run_lists_known_ids_and_exits_2(shared_db):
    for args in (("show", "run-z"), ("compare", "run-a", "run-z")):
        result = invoke(*args, "--db", str(shared_db))
        assert result.exit_code == 2
        assert "unknown run 'run-z'; known runs: run-a, run-b" in result.output
        assert "Traceback" not in result.output


def test_compare_needs_two_runs(shared_db):
    assert invoke("compare", "run-a", "--db", str(shared_db)).exit_code == 2


def test_run_directory_without_database_is_read_from_events(run_dir, tmp_path):
    result = invoke("show", str(run_dir))
    assert result.exit_code == 0, result.output
    assert _row(result.output, "run") == ["run", "run-a"]
    assert _row(result.output, "test accuracy")[-1] == "52.10"
    assert _row(result.output, "val final accuracy")[-1] == "54.40"
    assert "fossilized" in result.output and "culled" in result.output
    # The same run twice, however it is spelled, is refused: a comparison of a run with itself
    # says nothing and is a mistyped argument.
    for other in (str(run_dir), str(run_dir.resolve())):
        compare = invoke("compare", str(run_dir), other)
        assert compare.exit_code == 2
        assert f"'{run_dir}' and '{other}' name the same run (run-a); compare different runs" in compare.output


def test_a_policy_training_run_names_its_final_accuracy_a_last_round_mean(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "training": True, "rounds": 3}))
    out = invoke("show", str(run_dir)).output
    assert _row(out, "val final accuracy, last-round mean")[-1] == "54.40"
    assert not any(line.split()[:4] == ["val", "final", "accuracy", "54.40"] for line in out.splitlines())


def test_run_directory_with_only_a_summary(tmp_path, run_dir):
    (run_dir / "events.jsonl").unlink()
    result = invoke("show", str(run_dir))
    assert result.exit_code == 0, result.output
    assert _row(result.output, "test accuracy")[-1] == "52.10"
    assert _row(result.output, "baseline test accuracy")[-1] == "49.30"
    assert _row(result.output, "val final accuracy")[-1] == "54.40"
    assert "cnn:attention" in result.output
    assert _row(result.output, "      0  r0")[-2:] == ["+0.70", "+2.60"]


@pytest.mark.parametrize("damaged", ["summary.json", "events.jsonl"])
def test_an_integer_too_large_for_any_field_is_named_with_its_file(run_dir, damaged):
    path = run_dir / damaged
    if damaged == "summary.json":
        summary = json.loads(path.read_text())
        path.write_text(json.dumps({**summary, "host_params": 2**63}))
    else:
        path.write_text(path.read_text().replace('"epoch": 1,', '"epoch": 99999999999999999999999,', 1))
    result = invoke("show", str(run_dir))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"cannot read run {run_dir}: {str(path)!r} holds an integer too large for any field of a run" \
        in result.output


def test_runs_directory_merges_run_dirs_and_shared_database(tmp_path, run_dir_factory,
                                                            run_factory):
    root = tmp_path / "runs"
    run_dir_factory(root, "run-a")
    with_db = run_dir_factory(root, "run-c")
    sink = SqliteSink.from_options(run_dir=with_db, options={})
    for event in run_factory("run-c"):
        sink.emit(event)
    sink.close()
    shared = SqliteSink(root / "runs.sqlite")
    for event in run_factory("run-d"):
        shared.emit(event)
    shared.close()
    result = invoke("list", "--db", str(root))
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()[2:]] == [
        "run-a", "run-c", "run-d"]


def test_default_db_is_runs_in_cwd(tmp_path, run_dir_factory, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = invoke("list")
    assert missing.exit_code == 2 and "pass --db" in missing.output
    run_dir_factory(tmp_path / "runs", "run-a")
    assert "run-a" in invoke("list").output


def test_bad_inputs_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    bad_db = invoke("list", "--db", str(tmp_path / "notes.txt"))
    assert bad_db.exit_code == 2 and "not an esper run database" in bad_db.output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke("list", "--db", str(empty)).output.strip() == "no runs recorded"
    assert invoke("show", str(empty)).exit_code == 2
    assert invoke("list", "--db", str(tmp_path / "nowhere")).exit_code == 2


def test_a_run_named_by_a_path_that_is_no_run_directory_is_named_in_the_error(tmp_path, run_dir, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no ./runs to look ids up in
    (elsewhere / "notes.txt").write_text("hello")
    cases = {
        ("show", "notes.txt"): "'notes.txt' is a file, not a run directory; name a run directory or the id",
        ("show", "no/such"): "run directory 'no/such' does not exist",
        ("show", "nosuch"): "no run 'nosuch': it is no run directory here, and no run database or runs "
                            "directory at runs",
        ("compare", str(run_dir), "nosuch"): "no run 'nosuch'",
        ("show", str(run_dir), "--db", "missing.sqlite"): "--db 'missing.sqlite' does not exist",
    }
    for args, message in cases.items():
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert message in result.output, (args, result.output)


def test_killed_run_shows_as_running(tmp_path, run_factory):
    events = run_factory("run-k")
    sink = SqliteSink(tmp_path / "run.sqlite")
    for event in events[:30]:
        sink.emit(event)
    # Simulated crash: the sink is never closed.
    record, source, sources = queries.resolve_run("run-k", tmp_path / "run.sqlite")
    epochs = queries.run_epochs(source, "run-k")
    queries.close_sources(sources)
    assert record.status == "running"
    assert record.epochs == epochs[-1].epoch >= 3
    assert record.final_accuracy == epochs[-1].val_accuracy
    sink.close()


def test_queries_read_summary_seeds_into_existing_rows(tmp_path, run_dir):
    source = queries.load_run_dir(run_dir)
    rows = source.connection.execute(
        "SELECT slot, outcome, contribution FROM seeds ORDER BY seed_id").fetchall()
    source.connection.close()
    assert rows == [("r0", "fossilized", 2.6), ("r1", "culled", None)]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["seeds"][0]["outcome"] == "fossilized"


def test_readonly_source_does_not_create_files(tmp_path):
    with pytest.raises(EsperError, match="no run database or runs directory at"):
        queries.open_sources(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()
    assert sqlite3.sqlite_version  # the stdlib module is all the queries need
