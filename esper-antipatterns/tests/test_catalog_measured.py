"""The catalog's measured signatures agree with the last measurement written to the docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esper_antipatterns.catalog import ANTIPATTERNS

MEASUREMENT = Path(__file__).resolve().parents[2] / "docs" / "antipatterns_signatures.json"


@pytest.mark.skipif(not MEASUREMENT.exists(), reason="not a source checkout")
def test_every_entry_expects_what_its_measured_run_showed() -> None:
    results = json.loads(MEASUREMENT.read_text())["results"]
    for entry in ANTIPATTERNS:
        measured = results[entry.name]
        assert measured["expected"] == entry.expected_value, entry.name
        assert measured["designed"] == entry.designed_signature.value, entry.name
        if entry.expected_signature is None:
            assert measured["detected"] == {}, entry.name
        else:
            assert entry.expected_value in measured["detected"], entry.name
