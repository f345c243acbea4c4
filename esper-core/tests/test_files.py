"""Files Esper writes: atomic replacement, and one file mode for everything in a run directory
(what ``open(path, "w")`` gives under the user's umask, like ordinary tools)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from engine_helpers import _policies_plugin

from esper_core.config import RunConfig
from esper_core.files import UnreadableTorchFile, atomic_file, load_torch_file, write_atomic, write_json
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
    with pytest.raises(UnreadableTorchFile, match="^it cannot be opened: Is a directory$"):
        load_torch_file(tmp_path)
