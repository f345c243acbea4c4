"""The blueprint library file: round trip, clear errors, conformance, catalog registration."""

from __future__ import annotations

import json

import pytest

from esper_core.discovery.library import (
    BlueprintLibrary,
    LibraryEntry,
    LibraryError,
    library_blueprints,
    read_library,
    write_library,
)
from esper_core.plugins.manager import PluginSettings, load_plugins
from esper_core.plugins.registry import build_catalog
from esper_core.setup.resolve import register_library
from esper_core.testing import BlueprintConformance, toy

ENTRIES = [
    LibraryEntry(name="found-a", tokens="RES_START CONV KERNEL_3 DILATE_2 OUT_IN GELU SCALE RES_END".split(),
                 fitness=0.9, performance={"xor": 1.0}, params=600.0, evaluation=12),
    LibraryEntry(name="found-b", tokens="GATE_START POOL_GLOBAL LINEAR OUT_D2 TANH LINEAR OUT_IN ZERO_INIT GATE_END "
                                        "POOL_MAX3".split(), fitness=0.5),
    LibraryEntry(name="found-c", tokens="CONV KERNEL_5 DEPTHWISE OUT_IN SILU NORM".split(), fitness=0.1),
]
LIBRARY = BlueprintLibrary(topology="cnn", entries=ENTRIES, provenance={"generator": "evolution", "seed": 0})


@pytest.fixture
def library_file(tmp_path):
    path = tmp_path / "lib.json"
    write_library(path, LIBRARY)
    return path


def test_round_trip(library_file):
    assert read_library(library_file) == LIBRARY
    data = json.loads(library_file.read_text())
    assert data["format"] == "esper-blueprint-library" and data["version"] == 1


def _corrupt(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("change", "message"), [
    ({"version": 2}, "has version 2; this Esper reads version 1"),
    ({"format": "other"}, "is not an Esper blueprint library"),
    ({"topology": "transformer"}, "topology 'transformer' is not supported"),
    ({"blueprints": {}}, '"blueprints" must be a list'),
    ({"blueprints": [{"name": "x"}]}, "entry 0 is malformed"),
    ({"blueprints": [{"name": "x", "tokens": ["LINEAR", "KERNEL_3", "OUT_IN"], "fitness": 1}]},
     "x: token 1: KERNEL_3: a kernel size applies to CONV, not LINEAR"),
    ({"blueprints": [{"name": "Bad Name", "tokens": ["RELU"], "fitness": 1}]}, "name 'Bad Name' must be"),
    ({"blueprints": [{"name": "a", "tokens": ["RELU"], "fitness": 1}] * 2}, "duplicate blueprint name 'a'"),
])
def test_corrupt_or_mismatched_files_are_clear_errors(library_file, change, message):
    _corrupt(library_file, **change)
    with pytest.raises(LibraryError) as info:
        read_library(library_file)
    assert message in str(info.value) and str(library_file) in str(info.value)


def test_missing_and_non_json_files(tmp_path):
    with pytest.raises(LibraryError, match="does not exist"):
        read_library(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LibraryError, match="is not valid JSON"):
        read_library(tmp_path / "bad.json")


def test_specs_are_priced_without_torch_and_claim_identity_only_when_true():
    specs = library_blueprints(LIBRARY, source="lib.json")
    assert [s.key for s in specs] == ["cnn:found-a", "cnn:found-b", "cnn:found-c"]
    assert all(s.action_index is None for s in specs)
    assert [s.identity_at_init for s in specs] == [True, False, False]
    assert specs[0].param_estimate(8) == 9 * 64 + 8 + 8  # conv with bias + scale
    assert specs[0].tokens == tuple(ENTRIES[0].tokens)


_SPECS = library_blueprints(LIBRARY, source="lib.json")


class TestLibraryBlueprintA(BlueprintConformance):
    spec = _SPECS[0]


class TestLibraryBlueprintB(BlueprintConformance):
    spec = _SPECS[1]


class TestLibraryBlueprintC(BlueprintConformance):
    spec = _SPECS[2]


def test_registering_a_library_appends_after_the_catalog(library_file):
    catalog = build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy)]))
    register_library(str(library_file), "cnn", catalog)
    register_library(str(library_file), "cnn", catalog)  # the same file again adds nothing
    assert [s.name for s in catalog.blueprints.for_topology("cnn")] == ["found-a", "found-b", "found-c"]
    assert "blueprint library" in catalog.blueprints.provider("cnn:found-a").distribution
    with pytest.raises(LibraryError, match="holds 'cnn' blueprints; the task's topology is 'toy'"):
        register_library(str(library_file), "toy", catalog)
    other = library_file.parent / "other.json"
    write_library(other, BlueprintLibrary(topology="cnn", entries=[
        LibraryEntry(name="found-a", tokens=["RELU"], fitness=0.0)]))
    with pytest.raises(Exception, match="duplicate blueprint 'cnn:found-a'"):
        register_library(str(other), "cnn", catalog)


@pytest.mark.parametrize(("content", "message"), [
    (b'{"format": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply|is not valid JSON"),
    (b"\xff\xfe\x00{", "is not UTF-8 text"),
    # json.loads raises a plain ValueError (no JSONDecodeError) past Python's 4300-digit limit
    (b'{"format": "esper-blueprint-library", "version": 1, "x": ' + b"9" * 100_000 + b"}",
     r"holds an integer too long to read \(more than 4300 digits\)"),
    (json.dumps({"format": "esper-blueprint-library", "version": 1, "topology": "cnn",
                 "blueprints": [{"name": f"b{i}", "tokens": ["RELU"], "fitness": 1} for i in range(5000)]}).encode(),
     "holds 5000 blueprints; at most 4096"),
    (json.dumps({"format": "esper-blueprint-library", "version": 1, "topology": "cnn",
                 "blueprints": [{"name": "s", "tokens": "RELU", "fitness": 1}]}).encode(),
     "entry 0 is malformed"),
])
def test_hostile_library_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "hostile.json"
    path.write_bytes(content)
    with pytest.raises(LibraryError, match=message) as info:
        read_library(path)
    assert "\n" not in str(info.value)


def test_an_oversized_library_is_refused_before_parsing(tmp_path, monkeypatch):
    from esper_core.discovery import library

    monkeypatch.setattr(library, "MAX_LIBRARY_BYTES", 10)
    path = tmp_path / "big.json"
    path.write_text(" " * 11)
    with pytest.raises(LibraryError, match="is 11 bytes; at most 10 are read"):
        read_library(path)


@pytest.mark.parametrize(("blueprints", "message"), [
    ([], "holds no blueprints"),
    ([{"name": "x"}], "entry 0 is malformed: 'tokens' must be a list of token names, got nothing"),
    ([{"name": "s", "tokens": "RELU", "fitness": 1}],
     "entry 0 is malformed: 'tokens' must be a list of token names, got a string"),
    ([{"tokens": ["RELU"], "fitness": 1}], "entry 0 is malformed: it has no 'name'"),
    (["RELU"], 'entry 0 is malformed: it must be an object with "name", "tokens" and "fitness", got a string'),
    ([{"name": "a", "tokens": ["RELU"]}], "entry 0 is malformed: it has no 'fitness'"),
    ([{"name": "a", "tokens": ["RELU"], "fitness": "high"}],
     "entry 0 is malformed: 'fitness' must be a finite number, got a string 'high'"),
    ([{"name": "a", "tokens": ["RELU"], "fitness": 1, "performance": [1]}],
     "entry 0 is malformed: 'performance' must be an object mapping task names to numbers, got a list"),
    ([{"name": "a", "tokens": ["RELU"], "fitness": 1, "evaluation": 1.5}],
     "entry 0 is malformed: 'evaluation' must be a whole number, got a number 1.5"),
])
def test_empty_and_malformed_libraries_say_what_is_wrong_in_words(library_file, blueprints, message):
    _corrupt(library_file, blueprints=blueprints)
    with pytest.raises(LibraryError) as info:
        read_library(library_file)
    assert message in str(info.value) and str(library_file) in str(info.value)
    assert "Error(" not in str(info.value)  # never an exception's repr


def test_a_pipe_or_device_is_refused_before_it_is_opened(tmp_path):
    import os
    from pathlib import Path

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    with pytest.raises(LibraryError, match=r"blueprint library '.*pipe.json' is not a regular file \(a named pipe\)"):
        read_library(fifo)
    if os.path.exists("/dev/zero"):  # reading it would fill memory
        with pytest.raises(LibraryError, match=r"'/dev/zero' is not a regular file \(a character device\)"):
            read_library(Path("/dev/zero"))
