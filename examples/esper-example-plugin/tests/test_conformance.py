"""Esper's conformance kit, run on each component of the example plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from esper_core.contracts.protocols import Sink
from esper_core.testing import BlueprintConformance, PolicyConformance, SinkConformance
from esper_example_plugin.plugin import (
    esper_register_blueprints,
    esper_register_policies,
    esper_register_telemetry_sinks,
)
from esper_example_plugin.timeline import TIMELINE_FILE, read_timeline


class TestPointwiseMLP(BlueprintConformance):
    spec = esper_register_blueprints()[0]


class TestEagerPolicy(PolicyConformance):
    spec = esper_register_policies()[0]


class TestTimelineSink(SinkConformance):
    def make_sink(self, run_dir: Path) -> Sink:
        return esper_register_telemetry_sinks()[0].factory(run_dir=run_dir, options={})

    def read_back(self, run_dir: Path) -> list[dict[str, Any]]:
        return list(read_timeline(run_dir / TIMELINE_FILE))
