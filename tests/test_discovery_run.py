"""A blueprint from a library file is germinated in a real run (``esper run --blueprint-library``)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from esper_core.cli.main import build_cli
from esper_core.discovery.library import BlueprintLibrary, LibraryEntry, write_library
from esper_core.plugins.manager import PluginSettings

TOKENS = "RES_START CONV KERNEL_5 DEPTHWISE OUT_IN GELU CONV KERNEL_1 OUT_IN ZERO_INIT RES_END".split()


def test_run_germinates_a_library_blueprint(tmp_path):
    library = tmp_path / "lib.json"
    write_library(library, BlueprintLibrary(topology="cnn", provenance={"generator": "test"}, entries=[
        LibraryEntry(name="found-dw", tokens=TOKENS, fitness=0.8)]))
    out = tmp_path / "run"
    cli = build_cli(PluginSettings(allow=("cnn", "policies")))
    result = CliRunner().invoke(cli, [
        "--log-level", "warning", "run", "--task", "micro", "--policy", "random", "--epochs", "6", "--seed", "0",
        "--blueprints", "found-dw", "--blueprint-library", str(library), "--no-compare-baseline",
        "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    germinated = [e for e in events if e.get("blueprint") == "cnn:found-dw"]
    assert germinated, "the library blueprint was never germinated"
    assert f'blueprint_library = "{library}"' in (out / "config.toml").read_text()


def test_run_rejects_a_library_for_another_topology(tmp_path):
    library = tmp_path / "lib.json"
    write_library(library, BlueprintLibrary(topology="cnn", entries=[
        LibraryEntry(name="found-dw", tokens=TOKENS, fitness=0.8)]))
    cli = build_cli(PluginSettings(allow=("transformer", "policies")))
    result = CliRunner().invoke(cli, ["run", "--task", "pytext", "--blueprint-library",
                                      str(library), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "holds 'cnn' blueprints; the task's topology is 'transformer'" in result.output
