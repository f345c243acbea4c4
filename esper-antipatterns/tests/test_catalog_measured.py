"""The catalog's measured signatures agree with the last measurement written to the docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esper_antipatterns.catalog import ALL_ANTIPATTERNS, NO_SIGNATURE
from esper_antipatterns.signatures import CONSENSUS_SHARE, consensus

MEASUREMENT = Path(__file__).resolve().parents[2] / "docs" / "antipatterns_signatures.json"


@pytest.mark.skipif(not MEASUREMENT.exists(), reason="not a source checkout")
def test_every_entry_expects_what_its_measured_runs_showed() -> None:
    payload = json.loads(MEASUREMENT.read_text())
    assert len(payload["seeds"]) >= 3 and payload["consensus_share"] == CONSENSUS_SHARE
    for entry in ALL_ANTIPATTERNS:
        measured = payload["topologies"][entry.topology]["results"][entry.name]
        per_seed = [run["detected"] for run in measured["seeds"].values()]
        assert len(per_seed) == len(payload["seeds"]), entry.key
        # Recomputed from the per-seed detections, not trusted from the file's own summary.
        shown = consensus(per_seed, entry.designed_signature.value)
        assert (shown or NO_SIGNATURE) == measured["measured"] == entry.expected_value, entry.key
        assert measured["expected"] == entry.expected_value, entry.key
        assert measured["designed"] == entry.designed_signature.value, entry.key
        for signature, count in measured["shown_in"].items():
            assert count == sum(signature in d for d in per_seed), (entry.key, signature)
            assert f"{signature} {count}/{len(per_seed)}" in entry.measured, (entry.key, entry.measured)


def test_entries_that_miss_their_design_say_what_they_do_instead() -> None:
    for entry in ALL_ANTIPATTERNS:
        if entry.expected_signature is not entry.designed_signature:
            assert len(entry.note) > 40, entry.key
        else:
            assert entry.note == "", entry.key
