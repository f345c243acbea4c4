"""Two sinks of one run never write one file: the second to claim a path (the same file, or a
path inside or holding the other's) is refused before either opens anything, whether the path
is a sink's default (``events.jsonl``, ``run.sqlite``) or given as an option."""

from __future__ import annotations

import pytest

from esper_core.config import RunConfig
from esper_core.errors import ConfigError
from esper_core.setup.resolve import resolve_run
from esper_core.storage.outputs import check_sink_path, distinct_sink_paths
from esper_core.storage.rundir import create_run_dir
from esper_core.tolaria.job import _open_sinks


def _open(catalog, run_dir, sinks, tables):
    run = {"task": "toy", "policy": "still", "telemetry": sinks, "observers": []}
    config = RunConfig.from_dict({"run": run, "telemetry": tables})
    return _open_sinks(resolve_run(config, catalog), run_dir)


@pytest.mark.parametrize(("sinks", "tables", "message"), [
    (["jsonl", "csv"], {"csv": {"path": "events.jsonl"}},
     r"telemetry sink 'csv': path '.*events.jsonl' is the file telemetry sink 'jsonl' writes"),
    (["sqlite", "csv"], {"csv": {"path": "run.sqlite"}},
     r"telemetry sink 'csv': path '.*run.sqlite' is the file telemetry sink 'sqlite' writes"),
    (["jsonl", "sqlite"], {"sqlite": {"path": "{run}/events.jsonl"}},
     r"telemetry sink 'sqlite': path '.*events.jsonl' is the file telemetry sink 'jsonl' writes"),
    (["jsonl", "csv"], {"jsonl": {"path": "{tmp}/shared.log"}, "csv": {"path": "{tmp}/shared.log"}},
     r"telemetry sink 'csv': path '.*shared.log' is the file telemetry sink 'jsonl' writes"),
    (["jsonl", "csv"], {"jsonl": {"path": "{run}/logs"}, "csv": {"path": "logs/metrics.csv"}},
     r"telemetry sink 'csv': path '.*metrics.csv' overlaps the path telemetry sink 'jsonl' writes"),
])
def test_a_second_sink_on_a_claimed_path_is_refused(catalog, tmp_path, sinks, tables,
                                                                            message):
    run_dir = create_run_dir(tmp_path / "run")
    tables = {name: {k: v.format(run=run_dir, tmp=tmp_path) for k, v in options.items()}
              for name, options in tables.items()}
    with pytest.raises(ConfigError, match=message + r" \('.*'\); give each sink its own file$"):
        _open(catalog, run_dir, sinks, tables)


def test_sinks_on_their_own_paths_open_and_the_claims_end_with_the_run(catalog, tmp_path):
    run_dir = create_run_dir(tmp_path / "run")
    hub = _open(catalog, run_dir, ["jsonl", "csv", "sqlite"], {})
    hub.close()
    # a resume opens the same sinks again on the same files
    _open(catalog, run_dir, ["jsonl", "csv", "sqlite"], {}).close()
    # outside a run's sink opening (a sink used as a library) nothing is claimed
    for _ in range(2):
        check_sink_path(run_dir / "x.csv", run_dir, owner="telemetry sink 'csv'")
    with distinct_sink_paths():
        check_sink_path(run_dir / "x.csv", run_dir, owner="telemetry sink 'csv'")
        with pytest.raises(ConfigError, match="is the file telemetry sink 'csv' writes"):
            check_sink_path(run_dir / "x.csv", run_dir, owner="telemetry sink 'mine'")
