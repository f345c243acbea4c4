import json

import pytest
from structlog.testing import capture_logs

from esper_core.errors import ConfigError
from esper_core.telemetry.jsonl import JsonlSink, read_events
from esper_core.testing import SinkConformance, sample_event_stream


class TestJsonlSinkConformance(SinkConformance):
    def make_sink(self, run_dir):
        return JsonlSink.from_options(run_dir=run_dir, options={})

    def read_back(self, run_dir):
        return list(read_events(run_dir / "events.jsonl"))


def test_torn_last_line_is_skipped(tmp_path):
    sink = JsonlSink(tmp_path / "events.jsonl")
    for event in sample_event_stream()[:3]:
        sink.emit(event)
    sink.close()
    with open(tmp_path / "events.jsonl", "a") as handle:
        handle.write('{"kind": "epoch", "trunc')  # a kill in the middle of a write
    assert len(list(read_events(tmp_path / "events.jsonl"))) == 3


def test_cap_stops_writing_with_one_warning(tmp_path):
    sink = JsonlSink(tmp_path / "e.jsonl", max_bytes=600)
    with capture_logs() as logs:
        for event in sample_event_stream() * 3:
            sink.emit(event)
    sink.close()
    assert (tmp_path / "e.jsonl").stat().st_size <= 600
    assert [entry["event"] for entry in logs] == ["jsonl_cap_reached"]
    for line in (tmp_path / "e.jsonl").read_text().splitlines():
        json.loads(line)


def test_options_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="sink 'jsonl': unknown option 'rotate'; allowed options: max_bytes, path$"):
        JsonlSink.from_options(run_dir=tmp_path, options={"rotate": True})
    with pytest.raises(ConfigError, match="sink 'jsonl' option 'max_bytes' = 0 is invalid; expected an integer ≥ 1$"):
        JsonlSink.from_options(run_dir=tmp_path, options={"max_bytes": 0})
    with pytest.raises(ConfigError, match="run directory"):
        JsonlSink.from_options(run_dir=None, options={})
