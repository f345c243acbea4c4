"""Files Esper writes: atomic replacement, and one file mode for everything in a run directory
(what ``open(path, "w")`` gives under the user's umask, like ordinary tools)."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from engine_helpers import _policies_plugin

from esper_core.config import RunConfig
from esper_core.errors import ConfigError
from esper_core.files import (
    UnreadableTorchFile,
    atomic_file,
    check_input_file,
    check_writable_dir,
    check_writable_file,
    input_file_problem,
    load_torch_file,
    parse_text,
    read_input_file,
    write_atomic,
    write_json,
)
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.tolaria.job import execute_run


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_get_the_mode_open_would_give(tmp_path, mask, expected):
    with umask(mask):
        write_atomic(tmp_path / "a.txt", "text")
        write_json(tmp_path / "b.json", {"k": 1})
        with atomic_file(tmp_path / "c.bin") as handle:
            handle.write(b"\0")
        with open(tmp_path / "plain.txt", "w") as handle:
            handle.write("reference")
    modes = {p.name: _mode(p) for p in tmp_path.iterdir()}
    assert modes == dict.fromkeys(["a.txt", "b.json", "c.bin", "plain.txt"], expected)


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    write_atomic(target, "old")
    with pytest.raises(ZeroDivisionError), atomic_file(target) as handle:
        handle.write(b"new")
        raise ZeroDivisionError
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_every_file_of_a_run_directory_has_one_mode(tmp_path):
    catalog = build_catalog(load_plugins(PluginSettings(autoload=False),
                                         extra=[("toy", toy), ("scripted", _policies_plugin())]))
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "scripted", "epochs": 3,
                                          "compare_baseline": False}})
    with umask(0o022):
        out = create_run_dir(tmp_path / "run")
        execute_run(resolve_run(config, catalog), catalog, out)
    modes = {str(p.relative_to(out)): oct(_mode(p)) for p in out.rglob("*") if p.is_file()}
    assert {"config.toml", "summary.json", "events.jsonl", "model.pt"} <= set(modes)
    assert any(name.startswith("checkpoints/") for name in modes)
    assert set(modes.values()) == {oct(0o644)}, modes


class _NotPlainData:
    pass


def test_load_torch_file_reads_tensors_and_says_in_words_why_a_file_is_not_one(tmp_path):
    import torch

    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(2), "n": 3}, good)
    loaded = load_torch_file(good)
    assert torch.equal(loaded["w"], torch.ones(2)) and loaded["n"] == 3
    whole = good.read_bytes()
    cases = {
        "text.pt": (b"hello\n", "it is not a file torch.save writes"),  # torch: KeyError '104'
        "noise.pt": (bytes(range(256)) * 4, "it is not a file torch.save writes"),  # torch: IndexError
        "empty.pt": (b"", "it is empty"),
        "cut.pt": (whole[: len(whole) // 2], "it is truncated or corrupt (PytorchStreamReader failed"),
    }
    for name, (content, why) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(UnreadableTorchFile) as info:
            load_torch_file(tmp_path / name)
        assert str(info.value).startswith(why), (name, str(info.value))
    torch.save({"obj": _NotPlainData()}, tmp_path / "object.pt")
    with pytest.raises(UnreadableTorchFile, match=r"^it holds Python objects other than tensors and plain data, "
                                                  r"which Esper never loads \(Unsupported global: GLOBAL "
                                                  r"\S*test_files\._NotPlainData\)$"):
        load_torch_file(tmp_path / "object.pt")
    with pytest.raises(UnreadableTorchFile, match=r"^it is not a regular file \(a directory\)$"):
        load_torch_file(tmp_path)


# -- input files: regular files only, checked before they are opened ----------------------------


@contextmanager
def _no_hang(seconds: int = 20) -> Iterator[None]:
    """Fail (instead of waiting forever) if the block blocks, e.g. on opening a named pipe."""
    import signal

    def alarm(*_: object) -> None:
        raise AssertionError("blocked: a named pipe or device was opened")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_input_file_problem_names_what_a_path_is_in_words(tmp_path):
    regular = tmp_path / "a.toml"
    regular.write_text("x = 1\n")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    broken = tmp_path / "broken"
    broken.symlink_to(tmp_path / "nowhere")
    assert input_file_problem(regular) is None
    assert input_file_problem(regular, max_bytes=3) == "is 6 bytes; at most 3 are read"
    assert input_file_problem(fifo) == "is not a regular file (a named pipe)"
    assert input_file_problem(tmp_path) == "is not a regular file (a directory)"
    assert input_file_problem(tmp_path / "missing") == "does not exist"
    assert input_file_problem(broken) == "does not exist"
    if os.path.exists("/dev/zero"):
        assert input_file_problem("/dev/zero") == "is not a regular file (a character device)"
    with pytest.raises(ConfigError, match=r"^--config '.*pipe' is not a regular file \(a named pipe\)$"):
        check_input_file(fifo, label="--config")


def test_readers_refuse_pipes_and_devices_without_blocking_or_filling_memory(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with _no_hang():
        with pytest.raises(ConfigError, match=r"named pipe"):
            read_input_file(fifo, label="input")
        with pytest.raises(UnreadableTorchFile, match=r"^it is not a regular file \(a named pipe\)$"):
            load_torch_file(fifo)
        if os.path.exists("/dev/zero"):
            with pytest.raises(UnreadableTorchFile, match=r"a character device"):
                load_torch_file("/dev/zero")
            with pytest.raises(ConfigError, match=r"a character device"):
                read_input_file("/dev/zero", label="input")


def test_read_input_file_reads_at_most_its_cap_even_from_a_file_with_no_size(tmp_path):
    path = tmp_path / "small.json"
    path.write_bytes(b"{}")
    assert read_input_file(path, label="input", max_bytes=2) == b"{}"
    with pytest.raises(ConfigError, match=r"^input '.*small.json' is 2 bytes; at most 1 are read$"):
        read_input_file(path, label="input", max_bytes=1)
    status = "/proc/self/status"  # a regular file that reports size 0 but holds more
    if os.path.exists(status) and os.stat(status).st_size == 0:
        with pytest.raises(ConfigError, match="is over 10 bytes; at most 10 are read"):
            read_input_file(status, label="input", max_bytes=10)


def test_write_json_never_writes_invalid_json(tmp_path):
    import json
    import math

    path = tmp_path / "summary.json"
    write_json(path, {"total_reward": math.nan, "rows": [1.5, math.inf, {"x": -math.inf}], "n": 3, "ok": True})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text

    def strict(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    assert json.loads(text, parse_constant=strict) == {"total_reward": None, "rows": [1.5, None, {"x": None}],
                                                        "n": 3, "ok": True}


def test_an_output_under_a_broken_symlink_is_named_not_file_exists(tmp_path):
    link = tmp_path / "gone"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"^--out '.*gone/x.json' cannot be created: '.*gone' is a broken "
                                          r"symbolic link \(to '.*nowhere', which does not exist\)$"):
        check_writable_file(link / "x.json")


@pytest.mark.parametrize(("name", "why"), [
    ("a\x00b", "it contains a NUL byte"),
    ("x" * 300, r"file name too long \(a name of 300 bytes; at most 255\)"),
    ("/".join(["x" * 200] * 25), "file name too long"),  # every name short, the whole path over the OS's limit
], ids=["nul", "long-name", "long-path"])
def test_a_path_the_os_refuses_is_named_for_input_and_output(tmp_path, name, why):
    # Unchecked, os.stat raised ValueError (a NUL byte) and the output checks OSError (a long name).
    path = tmp_path / name
    assert input_file_problem(path).startswith("is not a usable path: file name too long" if "long" in why
                                               else f"is not a usable path: {why}")
    for check in (lambda: read_input_file(path, label="config file"),
                  lambda: check_input_file(path, label="config file"),
                  lambda: load_torch_file(path)):
        with pytest.raises((ConfigError, UnreadableTorchFile), match=r"is not a usable path: file name too long|"
                                                                     + why):
            check()
    if "/" not in name:  # the output checks refuse by spelling: a path over PATH_MAX is the OS's to refuse
        for check_output in (check_writable_dir, check_writable_file):
            with pytest.raises(ConfigError, match=rf"^--out '.*' is not a usable path: {why}$"):
                check_output(path)


@pytest.mark.parametrize("loads", [json.loads, tomllib.loads], ids=["json", "toml"])
def test_parse_text_names_an_integer_longer_than_python_reads(loads):
    # Past sys.get_int_max_str_digits() both raise a plain ValueError, no decode error of their own.
    text = ("v = " if loads is tomllib.loads else "") + "9" * 5000
    with pytest.raises(ConfigError, match=r"^config file 'c' holds an integer too long to read "
                                          r"\(more than 4300 digits\)$"):
        parse_text(text.encode(), loads, where="config file 'c'", kind="TOML")


@pytest.mark.parametrize(("loads", "text", "value"), [(json.loads, '{"v": 1}', {"v": 1}),
                                                      (tomllib.loads, "v = 1\n", {"v": 1})], ids=["json", "toml"])
def test_parse_text_skips_a_leading_byte_order_mark(loads, text, value):
    assert parse_text(b"\xef\xbb\xbf" + text.encode(), loads, where="config file 'c'", kind="x") == value
    assert parse_text("\ufeff" + text, loads, where="config file 'c'", kind="x") == value
    with pytest.raises(ConfigError, match="^config file 'c' is not valid x"):  # only at the start
        parse_text(text + "\ufeff", loads, where="config file 'c'", kind="x")
