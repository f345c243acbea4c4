"""Run checkpoints on the toy topology: one per epoch, last K kept, exact resume from any of
them (summary, weights and events), and clear errors for damaged or foreign checkpoints."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import types

import pytest
import torch

from esper_core import hookimpl
from esper_core.config import RunConfig
from esper_core.contracts import Decision, Op, PolicySpec
from esper_core.errors import CheckpointError, ConfigError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage import run_checkpoint as checkpoint_module
from esper_core.storage.run_checkpoint import list_checkpoints, load_run_checkpoint
from esper_core.storage.rundir import create_run_dir
from esper_core.telemetry.jsonl import read_events
from esper_core.testing import toy
from esper_core.tolaria.job import execute_run

EPOCHS = 9


class Wandering:
    """Germinates early, then draws each decision from its own generator (state to save)."""

    name = "wandering"

    def __init__(self, context):
        self.context = context
        self.rng = random.Random(context.seed)

    def reset(self, *, episode):
        self.rng = random.Random(f"{self.context.seed}:{episode}")

    def decide(self, *, report, mask):
        last = mask.n_slots - 1
        for i, ok in enumerate(mask.slots[Op.FOSSILIZE]):
            if ok:
                return Decision(op=Op.FOSSILIZE, slot=i, reason="allowed")
        if report.epoch <= 2 and mask.slots[Op.GERMINATE][last]:
            return Decision(op=Op.GERMINATE, slot=last, blueprint=self.context.blueprint_keys[0], reason="early")
        return Decision.wait(f"draw {self.rng.random():.6f}")

    def state_dict(self):
        return {"rng": self.rng.getstate()}

    def load_state_dict(self, state):
        self.rng.setstate(state["rng"])


class Forgetful(Wandering):
    name = "forgetful"
    state_dict = None  # type: ignore[assignment]
    load_state_dict = None  # type: ignore[assignment]


def _plugin():
    module = types.ModuleType("checkpoint_policies")

    @hookimpl
    def esper_register_policies():
        return [PolicySpec(name="wandering", factory=Wandering, description="test"),
                PolicySpec(name="forgetful", factory=Forgetful, description="test"),
                PolicySpec(name="noop", factory=Wandering, description="baseline stand-in")]

    module.esper_register_policies = esper_register_policies
    return module


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("p", _plugin())]))


def _resolved(catalog, out, **run):
    config = RunConfig.from_dict({
        "run": {"task": "toy", "policy": "wandering", "epochs": EPOCHS, "episodes": 2, "seed": 3,
                "compare_baseline": False, "deterministic": True, "out": str(out), **run},
        "gates": {"g5_min_contribution": -100.0},
    })
    return resolve_run(config, catalog)


def _run(catalog, out, *, resume=False, **run):
    if not resume:
        create_run_dir(out)
    return execute_run(_resolved(catalog, out, **run), catalog, out, resume=resume)


def _weights(out):
    return torch.load(out / "model.pt", weights_only=True)["state_dict"]


def _events(out):
    drop = {"timestamp", "seconds", "summary", "config"}
    return [{k: v for k, v in e.items() if k not in drop} for e in read_events(out / "events.jsonl")]


def _strip(summary):
    out = {k: v for k, v in summary.items() if k not in {"wall_seconds", "run_id"}}
    out["per_episode"] = [{k: v for k, v in e.items() if k != "wall_seconds"} for e in out["per_episode"]]
    return out


@pytest.fixture(scope="module")
def reference(catalog, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    summary = _run(catalog, out, checkpoint_keep=100)
    return out, summary


def test_a_checkpoint_after_every_epoch_of_every_episode(reference):
    out, summary = reference
    names = [p.name for p in list_checkpoints(out)]
    assert names == [f"ep{e:04d}-epoch{k:05d}.pt" for e in range(2) for k in range(1, EPOCHS + 1)]
    assert [s["outcome"] for s in summary["seeds"]] == ["fossilized"], "the architecture must change"
    assert not [p for p in (out / "checkpoints").iterdir() if p.suffix != ".pt"], "no temporary files left"


def test_only_the_last_k_are_kept(catalog, tmp_path):
    _run(catalog, tmp_path / "r", checkpoint_keep=3, episodes=1)
    assert [p.name for p in list_checkpoints(tmp_path / "r")] == [
        f"ep0000-epoch{k:05d}.pt" for k in range(EPOCHS - 2, EPOCHS + 1)]


@pytest.mark.parametrize("keep", [1, 4, 9, 10, 14, 18])
def test_resume_from_any_checkpoint_is_exact(catalog, reference, tmp_path, keep):
    """Everything after checkpoint ``keep`` is lost, as in a crash right after writing it."""
    ref, summary = reference
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    for name in ("summary.json", "model.pt"):
        (out / name).unlink()
    for path in list_checkpoints(out)[keep:]:
        path.unlink()
    with open(out / "events.jsonl", "a") as handle:  # events written after the checkpoint
        handle.write('{"kind": "epoch", "partial": true}\n{"torn')
    resumed = _run(catalog, out, resume=True, checkpoint_keep=100)
    assert _strip(resumed) == _strip(summary)
    expected = _weights(ref)
    got = _weights(out)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], v) for k, v in expected.items())
    assert _events(out) == _events(ref)


def test_resume_without_any_checkpoint_starts_over(catalog, reference, tmp_path):
    ref, summary = reference
    out = tmp_path / "run"
    create_run_dir(out)
    (out / "events.jsonl").write_text('{"kind": "run_started"}\n')
    resumed = _run(catalog, out, resume=True, checkpoint_keep=100)
    assert _strip(resumed) == _strip(summary)
    assert _events(out) == _events(ref)


def test_a_finished_run_is_not_resumed(catalog, reference):
    ref, _ = reference
    with pytest.raises(ConfigError, match="already finished"):
        _run(catalog, ref, resume=True, checkpoint_keep=100)


def test_a_policy_without_state_cannot_be_resumed(catalog, tmp_path):
    out = tmp_path / "run"
    _run(catalog, out, policy="forgetful", episodes=1)
    (out / "summary.json").unlink()
    with pytest.raises(ConfigError, match="policy 'forgetful' keeps no checkpointable state"):
        _run(catalog, out, resume=True, policy="forgetful", episodes=1)


@pytest.fixture
def one_checkpoint(catalog, reference, tmp_path):
    ref, _ = reference
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    (out / "summary.json").unlink()
    for path in list_checkpoints(out)[3:]:
        path.unlink()
    return out, list_checkpoints(out)[-1]


def _load(catalog, out, path, **run):
    resolved = _resolved(catalog, out, checkpoint_keep=100, **run)
    return load_run_checkpoint(path, resolved=resolved, slot_names=("hidden1", "hidden2"))


def test_the_checkpoint_loads(catalog, one_checkpoint):
    out, path = one_checkpoint
    data = _load(catalog, out, path)
    assert (data["episode"], data["epoch"]) == (0, 3)
    assert [r["stage"] for r in data["python"]["architecture"]][-1] != "DORMANT"


@pytest.mark.parametrize(("damage", "why"), [
    ("truncate", "it is truncated or corrupt ("),
    ("garbage", "it is not a file torch.save writes"),
    ("empty", "it is empty"),
    ("flip", "it is truncated or corrupt ("),
    ("objects", "it holds Python objects other than tensors and plain data, which Esper never loads"),
])
def test_a_damaged_checkpoint_is_a_clear_error(catalog, one_checkpoint, damage, why):
    """The message says what is wrong with the file, once: not "truncated or corrupt" for a file
    of pickled objects, nor "truncated or corrupt (it is truncated or corrupt (...))"."""
    import argparse

    out, path = one_checkpoint
    data = path.read_bytes()
    if damage == "objects":
        torch.save({"format": "esper-run-checkpoint", "x": argparse.Namespace(a=1)}, path)
    else:
        path.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(4096), "empty": b"",
                          "flip": data[:200] + bytes(b ^ 0xFF for b in data[200:400]) + data[400:]}[damage])
    with pytest.raises(CheckpointError) as info:
        _run(catalog, out, resume=True, checkpoint_keep=100)
    message = str(info.value)
    assert message.startswith(f"run checkpoint {str(path)!r} cannot be read: {why}"), message
    assert message.count("truncated or corrupt") <= 1 and "\n" not in message
    assert path.name in message and "delete it" in message


def test_a_damaged_only_checkpoint_says_the_run_cannot_continue(catalog, one_checkpoint):
    # Deleting it would leave no checkpoint, and --resume refuses a run past its first one with none.
    out, path = one_checkpoint
    for earlier in list_checkpoints(out)[:-1]:
        earlier.unlink()
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="cannot be read: it is empty") as info:
        _run(catalog, out, resume=True, checkpoint_keep=100)
    assert "only checkpoint" in str(info.value) and "delete it" not in str(info.value)


def test_a_file_of_another_kind_is_refused(catalog, one_checkpoint):
    out, path = one_checkpoint
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="is not an Esper run checkpoint"):
        _load(catalog, out, path)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("format_version", 99, "format version 99"),
    ("blueprint_catalog", ["toy:other"], "another blueprint catalog"),
    ("observation_version", 0, "observation schema v0"),
    ("slot_names", ["hidden2"], "with 1 slot "),
    # ... and a malformed header, the same way:
    ("episode", "0", "header field 'episode' is str, not int"),
    ("slot_names", [1, 2], "header field 'slot_names' is not a list of names"),
    ("run_config", None, "header field 'run_config' is missing, not dict"),
])
def test_a_foreign_or_malformed_checkpoint_is_refused(catalog, one_checkpoint, field, value, message):
    out, path = one_checkpoint
    data = torch.load(path, weights_only=True)
    data[field] = value
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=message):
        _load(catalog, out, path)


def test_a_checkpoint_of_another_configuration_is_refused(catalog, one_checkpoint):
    out, path = one_checkpoint
    with pytest.raises(CheckpointError, match=r"another configuration \(\[run\] seed: 3 in the checkpoint, 4 now\)"):
        _load(catalog, out, path, seed=4)


def test_a_write_failure_keeps_the_previous_checkpoint(catalog, tmp_path, monkeypatch):
    real_atomic_file = checkpoint_module.atomic_file
    calls = []

    @contextlib.contextmanager
    def failing_atomic_file(path):
        calls.append(path)
        with real_atomic_file(path) as handle:
            if len(calls) == 4:  # the disk fills up half-way through checkpoint 4
                handle.write(b"partial")
                raise OSError(28, "No space left on device")
            yield handle

    monkeypatch.setattr(checkpoint_module, "atomic_file", failing_atomic_file)
    out = tmp_path / "run"
    with pytest.raises(CheckpointError, match="No space left on device; the previous checkpoint "
                                              "ep0000-epoch00003.pt is intact"):
        _run(catalog, out, episodes=1)
    # No temporary file is left, and the last good checkpoint still loads.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["ep0000-epoch00002.pt", "ep0000-epoch00003.pt"]
    data = _load(catalog, out, out / "checkpoints" / "ep0000-epoch00003.pt", episodes=1)
    assert data["epoch"] == 3 and len(data["python"]["curve"]) == 3


def test_a_disk_full_inside_torch_save_is_a_clear_error(catalog, tmp_path, monkeypatch):
    """torch's zip writer reports a full disk as RuntimeError, not OSError."""
    real_save = checkpoint_module.torch.save
    calls = []

    def failing_save(obj, handle):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing "
                               "file data/0: file write failed")
        real_save(obj, handle)

    monkeypatch.setattr(checkpoint_module.torch, "save", failing_save)
    out = tmp_path / "run"
    with pytest.raises(CheckpointError, match="PytorchStreamWriter failed writing file.*previous checkpoint "
                                              "ep0000-epoch00002.pt is intact.*esper run --resume") as info:
        _run(catalog, out, episodes=1)
    assert "\n" not in str(info.value)
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    assert _load(catalog, out, list_checkpoints(out)[-1], episodes=1)["epoch"] == 2


class _Touch:
    """Unpickles into a call of Path.touch: the smallest proof that a pickle ran code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (type(self.path).touch, (self.path,))


def test_a_crafted_checkpoint_runs_nothing(catalog, one_checkpoint, tmp_path):
    import pickle

    out, path = one_checkpoint
    marker = tmp_path / "pwned"
    blob = pickle.dumps({"architecture": _Touch(marker)})
    pickle.loads(blob)  # the payload is real: plain pickle runs it
    assert marker.exists()
    marker.unlink()
    data = torch.load(path, weights_only=True)
    data["python"] = blob
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=r"is refused: its state names pathlib.*Path.touch.*nothing "
                                              r"from it was run") as info:
        _run(catalog, out, resume=True, checkpoint_keep=100)
    assert not marker.exists()
    assert "\n" not in str(info.value)


def test_a_checkpoint_state_that_is_not_a_pickle_is_a_clear_error(catalog, one_checkpoint):
    out, path = one_checkpoint
    data = torch.load(path, weights_only=True)
    data["python"] = b"\x80\x05not a pickle"
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="is corrupt .its state does not unpickle"):
        _load(catalog, out, path)


class _Opaque:
    pass


class Hoarding(Wandering):
    """Keeps an instance of its own class in its state: not data a checkpoint may hold."""

    def state_dict(self):
        return {"rng": self.rng.getstate(), "extra": _Opaque()}


def test_a_state_with_an_unlisted_class_fails_at_the_first_checkpoint(tmp_path):
    module = types.ModuleType("hoarding_policy")

    @hookimpl
    def esper_register_policies():
        return [PolicySpec(name="wandering", factory=Hoarding, description="test")]

    module.esper_register_policies = esper_register_policies
    catalog = build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("p", module)]))
    out = tmp_path / "run"
    with pytest.raises(CheckpointError,
                       match=r"its state holds \S*:_Opaque, which run checkpoints do not load") as info:
        _run(catalog, out, episodes=1)
    assert "state_dict must return plain data" in str(info.value)
    assert list_checkpoints(out) == []




@pytest.mark.parametrize("field", ["rng", "curve", "architecture"])
def test_allowed_but_ill_fitting_state_is_a_clear_error(catalog, one_checkpoint, field):
    """Only data classes, yet not this run's state: a CheckpointError, not a traceback."""
    from esper_core.storage import safe_pickle as state_pickle

    out, path = one_checkpoint
    data = torch.load(path, weights_only=True)
    python = state_pickle.loads(data["python"], data["python_tensors"])
    python[field] = {"not": "it"} if field != "architecture" else []
    data["python"], data["python_tensors"] = state_pickle.dumps(python)
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="is corrupt \\(|does not fit this run|are not this run.s") as info:
        _run(catalog, out, resume=True, checkpoint_keep=100)
    assert "\n" not in str(info.value)


def test_weights_that_do_not_fit_the_rebuilt_model_are_a_clear_error(catalog, one_checkpoint):
    out, path = one_checkpoint
    data = torch.load(path, weights_only=True)
    first = next(iter(data["model"]))
    data["model"][first] = torch.zeros(1)
    torch.save(data, path)
    with pytest.raises(CheckpointError,
                       match=r"after epoch 3 does not fit this run \(RuntimeError: .*delete it") as info:
        _run(catalog, out, resume=True, checkpoint_keep=100)
    assert "\n" not in str(info.value)


def _files(run_dir):
    """Every file of a run directory and its bytes."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _damage_weights(path):
    data = torch.load(path, weights_only=True)
    data["model"][next(iter(data["model"]))] = torch.zeros(1)
    torch.save(data, path)


def _damage_state(path):
    from esper_core.storage import safe_pickle as state_pickle

    data = torch.load(path, weights_only=True)
    python = state_pickle.loads(data["python"], data["python_tensors"])
    python["curve"] = ["not", "numbers"]
    data["python"], data["python_tensors"] = state_pickle.dumps(python)
    torch.save(data, path)


@pytest.mark.parametrize("damage", {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:500]),
    "empty": lambda path: path.write_bytes(b""),
    "objects": lambda path: torch.save({"x": types.SimpleNamespace()}, path),
    "ill-fitting state": _damage_state,
    "weights that do not fit": _damage_weights,  # refused only when restored into the episode
    "events lost": lambda path: (path.parent.parent / "events.jsonl").write_bytes(b""),
}.items(), ids=lambda item: item[0] if isinstance(item, tuple) else None)
def test_a_refused_resume_leaves_every_file_as_it_was(catalog, one_checkpoint, damage):
    """Nothing in the run directory changes before the resume is under way: not config.toml's
    keys or its `out` (this run directory was copied from another, so `out` differs), not the
    events (a resume drops those after its checkpoint only once it continues)."""
    out, path = one_checkpoint
    damage[1](path)
    before = _files(out)
    with pytest.raises(CheckpointError) as info:
        _run(catalog, out, resume=True, checkpoint_keep=100)
    assert "\n" not in str(info.value)
    assert _files(out) == before


def test_an_accepted_resume_of_a_moved_run_records_where_it_now_is(catalog, one_checkpoint):
    import tomllib

    out, _ = one_checkpoint
    stored = tomllib.loads((out / "config.toml").read_text())
    assert stored["run"]["out"] != str(out)  # copied from the reference run's directory
    _run(catalog, out, resume=True, checkpoint_keep=100)
    now = tomllib.loads((out / "config.toml").read_text())
    assert now["run"]["out"] == str(out)
    assert {**now, "run": {**now["run"], "out": None}} == {**stored, "run": {**stored["run"], "out": None}}


def test_a_resume_with_the_same_configuration_leaves_config_toml_as_it_was(catalog, one_checkpoint):
    out, _ = one_checkpoint
    config = out / "config.toml"
    text = config.read_text()
    # The same configuration in another key order, with this directory as `out`: equivalent, so kept.
    lines = text.splitlines()
    out_line = next(i for i, line in enumerate(lines) if line.startswith("out = "))
    lines[out_line] = f"out = {str(out)!r}".replace("'", '"')
    lines.insert(1, lines.pop(out_line))
    config.write_text("\n".join(lines) + "\n")
    before = config.read_bytes()
    _run(catalog, out, resume=True, checkpoint_keep=100)
    assert config.read_bytes() == before
