"""Plurals in messages: "known policies", "1 sink, 2 observers"."""

from __future__ import annotations

import re

import pytest

from esper_core.errors import UnknownNameError
from esper_core.testing.distributions import run_esper
from esper_core.wording import count, plural, singular


@pytest.mark.parametrize(("one", "many"), [
    ("policy", "policies"), ("task", "tasks"), ("alpha schedule", "alpha schedules"),
    ("topology", "topologies"), ("telemetry sink", "telemetry sinks"), ("crucible task", "crucible tasks"),
    ("key", "keys"), ("match", "matches"),
])
def test_plural_and_singular(one, many):
    assert plural(one) == many
    assert singular(many) == one


def test_count_uses_the_singular_for_one():
    assert [count(n, "observer") for n in (0, 1, 2)] == ["0 observers", "1 observer", "2 observers"]
    assert count(1, "policy") == "1 policy" and count(3, "policy") == "3 policies"


def test_unknown_name_lists_the_known_names_in_the_plural():
    error = UnknownNameError("policy", "ppp", ["ppo", "iql"])
    assert "known policies: iql, ppo" in str(error)


def test_plugins_table_counts_in_the_singular_and_plural():
    done = run_esper(["plugins"])
    assert done.returncode == 0, done.stderr
    counts = re.findall(r"\b(\d+) ([a-z ]+?)(?=,|$)", done.stdout, flags=re.MULTILINE)
    assert counts, done.stdout
    for n, noun in counts:
        assert (noun == singular(noun)) == (n == "1"), (n, noun)
