"""``esper discover`` end to end with the built-in generators (tiny budgets)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from esper_core.cli.main import build_cli
from esper_core.discovery.library import library_blueprints, read_library
from esper_core.plugins.manager import PluginSettings
from esper_core.testing import BlueprintConformance

FAST = ["--budget", "16", "--batch-size", "8", "--steps", "10", "--tasks", "xor,temporal", "--latency-weight", "0"]


def _discover(args):
    # esper-blueprints-cnn provides the topology and curriculum the search runs on
    return CliRunner().invoke(build_cli(PluginSettings(allow=("cnn",))), ["discover", *args])


@pytest.mark.parametrize("generator", ["random", "evolution"])
def test_discover_prints_steps_and_writes_a_library(tmp_path, generator):
    out = tmp_path / "lib.json"
    extra = ["--generator-option", "population=8", "--generator-option", "sample=4"] if generator == "evolution" else []
    result = _discover(["--generator", generator, *FAST, *extra, "--out", str(out), "--library-size", "3"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("step")]
    assert len(lines) == 2 and "evaluated     8" in lines[0] and "evaluated    16" in lines[1]
    assert "best" in lines[0] and "mean" in lines[0]
    assert not any("elapsed" in line for line in lines)  # not a terminal: no progress timing
    library = read_library(out)
    assert library.provenance["generator"] == generator and library.provenance["budget"] == 16
    assert 1 <= len(library.entries) <= 3
    assert library.entries[0].name == f"{generator}-s0-01"
    assert [e.fitness for e in library.entries] == sorted((e.fitness for e in library.entries), reverse=True)
    _passes_conformance(library_blueprints(library, source=str(out)))


def _passes_conformance(specs):
    """Run every conformance check of the kit on each discovered blueprint."""
    checks = [name for name in dir(BlueprintConformance) if name.startswith("test_")]
    for spec in specs:
        kit = type("Kit", (BlueprintConformance,), {"spec": spec, "sizes": (1, 8)})()
        for name in checks:
            try:
                getattr(kit, name)()
            except pytest.skip.Exception:
                assert name in ("test_identity_at_init_when_claimed",), (spec.key, name)


def test_on_a_terminal_each_step_line_ends_with_the_time_taken_and_the_eta(tmp_path, monkeypatch):
    import structlog

    from esper_core.presentation import progress

    monkeypatch.setattr(progress, "_is_terminal", lambda stream: True)
    try:
        result = CliRunner().invoke(build_cli(PluginSettings(allow=("cnn",))), [
            "--log-format", "console", "discover", "--generator", "random", *FAST, "--out", str(tmp_path / "l.json")])
    finally:
        structlog.reset_defaults()
    assert result.exit_code == 0, result.output
    first, last = [line for line in result.output.splitlines() if line.startswith("step")]
    assert " elapsed, ETA " in first and last.endswith(" elapsed")  # 8 of 16 candidates, then all 16


def test_discover_is_deterministic_and_json(tmp_path):
    runs = [_discover(["--generator", "evolution", *FAST, "--out", str(tmp_path / f"{i}.json"), "--json",
                       "--generator-option", "population=8"]) for i in range(2)]
    assert all(r.exit_code == 0 for r in runs), runs[0].output
    a, b = (json.loads(r.output) for r in runs)
    assert a["steps"] == b["steps"] and a["best_tokens"] == b["best_tokens"]


@pytest.mark.parametrize(("args", "message"), [
    (["--generator", "genetic"], "unknown blueprint generator 'genetic'"),
    (["--generator", "random", "--tasks", "xor,mnist"], "unknown crucible task 'mnist'"),
    (["--generator", "evolution", "--generator-option", "size=3"],
     "'evolution': unknown option 'size'; allowed options: population, sample"),
    (["--generator", "evolution", "--generator-option", "population=1"],
     "option 'population' = 1 is invalid; expected an integer ≥ 2"),
    (["--generator", "random", "--generator-option", "x=1"], "'random': unknown option 'x'; allowed options: none"),
    (["--generator", "evolution", "--generator-option", "population=4", "--generator-option", "sample=5"],
     "generator 'evolution': sample = 5 exceeds population = 4"),
    (["--generator", "random", "--batch-size", "2048"], "2048 is not in the range 1<=x<=1024"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = _discover([*args, "--budget", "1", "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_existing_output_is_not_overwritten(tmp_path):
    out = tmp_path / "lib.json"
    out.write_text("{}")
    result = _discover(["--generator", "random", "--out", str(out)])
    assert result.exit_code == 2 and "exists; choose another file or pass --force" in result.output


def test_builtin_generators_are_registered_through_the_hook():
    from esper_core.builtin import plugin

    specs = {s.name: s for s in plugin.esper_register_generators()}
    assert set(specs) == {"random", "evolution"}
    evolution = specs["evolution"].factory(seed=1, options={"generator_options": {"population": 4, "sample": 2}})
    assert len(evolution.propose(3)) == 3 and evolution.size == 4


def test_discover_reports_distinct_structures_and_the_best_novel_blueprint_apart(tmp_path):
    out = tmp_path / "lib.json"
    result = _discover(["--generator", "random", *FAST, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["novelty_radius"] == 0.95
    assert 1 <= summary["distinct_valid"] <= 16
    novel = [e for e in summary["hall_of_fame"] if e["novel"]]
    assert all(e["catalog_similarity"] < 0.95 for e in novel)
    assert all(e["catalog_similarity"] >= 0.95 for e in summary["hall_of_fame"] if not e["novel"])
    if novel:
        assert summary["best_novel_fitness"] == max(e["fitness"] for e in novel)
    if summary["best_is_novel"]:
        assert summary["best_novel_tokens"] == summary["best_tokens"]
    # The whole search in the summary, not just its best: what a comparison of generators needs.
    assert 0 < summary["valid_fraction"] <= 1
    assert -1 <= summary["mean_fitness"] <= summary["best_fitness"]
    assert summary["best_params"] > 0 and set(summary["best_performance"]) == {"xor", "temporal"}
    provenance = read_library(out).provenance
    assert provenance["distinct_valid"] == summary["distinct_valid"]
    assert ["RES_START", "NORM", "SCALE", "RES_END"] in provenance["catalog"]  # the catalog's norm
    text = _discover(["--generator", "random", *FAST, "--out", str(tmp_path / "t.json")]).output
    assert f"distinct valid structures: {summary['distinct_valid']} of 16 candidates" in text
    assert "best overall: " in text and "best novel:   " in text


def test_a_novelty_radius_outside_0_1_is_refused(tmp_path):
    result = _discover(["--novelty-radius", "1.5", "--budget", "1", "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 2 and "1.5 is not in the range 0<=x<=1" in result.output
