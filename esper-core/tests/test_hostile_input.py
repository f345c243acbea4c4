"""Hostile input the other test files do not cover: plugins that misbehave during a run,
blueprints that break the shape or emit NaN, and damaged or foreign run checkpoints through
the CLI. Each is a named one-line error (exit 2 through the CLI, no traceback), or — for a
blueprint the gates can judge — a refused germination the run survives.

Covered elsewhere (not repeated here): malformed TOML, unknown tables and keys with
suggestions, wrong types and out-of-range values (test_config.py, tests/test_run_end_to_end.py),
unknown names with suggestions (test_plugins.py, tests/test_run_end_to_end.py), plugins that
fail to import or whose registration hook raises or returns the wrong type (test_plugins.py),
missing and corrupt datasets (tests/test_run_end_to_end.py, esper-blueprints-cnn test_cifar.py),
damaged, foreign and unwritable checkpoints in process (test_run_checkpoint.py).

Through the CLI too: integers longer than Python reads (its 4300-digit limit on int/str
conversion, which json and tomllib raise as a plain ValueError) in every option string, TOML and
JSON file a user hands Esper, and paths the OS refuses by their spelling (a NUL byte, a file name
over 255 bytes) in every path a configuration names, input or output.
"""

from __future__ import annotations

import json
import types

import pytest
import torch
from click.testing import CliRunner
from engine_helpers import Germinating
from torch import nn

from esper_core import hookimpl
from esper_core.cli.main import build_cli
from esper_core.config import RunConfig
from esper_core.contracts import BlueprintSpec, PolicySpec
from esper_core.errors import PluginError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.testing.distributions import run_esper
from esper_core.tolaria.job import execute_run


class Raising(Germinating):
    def decide(self, *, report, mask):
        raise ZeroDivisionError("the policy divided by zero")


class WrongType(Germinating):
    def decide(self, *, report, mask):
        return "GERMINATE please"


class Widening(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.linear = nn.Linear(width, width + 1)

    def forward(self, h):
        return self.linear(h)


class EmitsNaN(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(width))

    def forward(self, h):
        return h * self.scale * float("nan")


def _plugin():
    module = types.ModuleType("hostile")

    @hookimpl
    def esper_register_policies():
        return [PolicySpec(name=n, factory=c, description="test")
                for n, c in (("germinating", Germinating), ("raising", Raising), ("wrong_type", WrongType))]

    @hookimpl
    def esper_register_blueprints():
        def spec(name, factory):
            return BlueprintSpec(name=name, topology=toy.TOPOLOGY, factory=factory,
                                 param_estimate=lambda w: 0, description="hostile")
        return [spec("widening", Widening), spec("emits_nan", EmitsNaN),
                spec("not_a_module", lambda width: "a string")]

    module.esper_register_policies = esper_register_policies
    module.esper_register_blueprints = esper_register_blueprints
    return module


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("h", _plugin())]))


def _run(catalog, tmp_path, policy, blueprint="toy:residual_linear"):
    out = create_run_dir(tmp_path / "run")
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": policy, "epochs": 3, "compare_baseline": False,
                                          "blueprints": [blueprint], "out": str(out)}})
    return execute_run(resolve_run(config, catalog), catalog, out), out


def test_a_policy_that_raises_is_named(catalog, tmp_path):
    with pytest.raises(PluginError, match=r"policy 'raising' raised in decide\(\) after epoch 1: "
                                          "ZeroDivisionError: the policy divided by zero"):
        _run(catalog, tmp_path, "raising")


def test_a_policy_returning_the_wrong_type_is_named(catalog, tmp_path):
    with pytest.raises(PluginError, match=r"policy 'wrong_type' returned str from decide\(\), not a Decision"):
        _run(catalog, tmp_path, "wrong_type")


def test_a_blueprint_building_no_module_is_named(catalog, tmp_path):
    with pytest.raises(PluginError, match="blueprint toy:not_a_module built str, not an nn.Module"):
        _run(catalog, tmp_path, "germinating", "toy:not_a_module")


@pytest.mark.parametrize(("blueprint", "reason"), [
    ("toy:widening", "seed output (2, 17) does not match its input (2, 16)"),
    ("toy:emits_nan", "seed output on the probe batch is not finite"),
])
def test_a_blueprint_that_breaks_shape_or_emits_nan_never_enters_the_forward(catalog, tmp_path, blueprint, reason):
    summary, out = _run(catalog, tmp_path, "germinating", blueprint)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    g1 = [e for e in events if e["kind"] == "gate" and e["gate"] == "g1_shape_and_finite"]
    assert g1 and not any(e["passed"] for e in g1), "G1 must refuse the seed"
    assert reason in g1[0]["reason"]
    stages = {e["to_stage"] for e in events if e["kind"] == "seed_lifecycle"}
    assert "TRAINING" not in stages and "BLENDING" not in stages
    assert summary["seed_params"] == 0
    assert all(torch.isfinite(t).all() for t in torch.load(out / "model.pt", weights_only=True)["state_dict"].values()
               if t.is_floating_point())


# Through the CLI (one tiny shapes run, then several resumes of ~3 s each): slow lane.
TINY = """
[run]
epochs = 3
compare_baseline = false
[task]
train_size = 128
val_size = 64
"""


@pytest.fixture(scope="module")
def stopped_cli_run(tmp_path_factory):
    """A finished tiny shapes run through the CLI, with its summary removed (as if killed after
    its last checkpoint)."""
    root = tmp_path_factory.mktemp("cli")
    (root / "tiny.toml").write_text(TINY)
    done = run_esper(["run", "--config", str(root / "tiny.toml"), "--out", str(root / "run")],
                     env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "run"


def _resume(run_dir, *extra):
    done = run_esper(["run", "--resume", str(run_dir), *extra], env={"OMP_NUM_THREADS": "1"})
    assert "Traceback" not in done.stderr
    return done


@pytest.mark.slow
def test_cli_resume_of_a_finished_run_is_refused(stopped_cli_run):
    done = _resume(stopped_cli_run)
    assert done.returncode == 2 and "that run already finished" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_cli_resume_from_a_damaged_checkpoint(stopped_cli_run, tmp_path, damage):
    import shutil

    run_dir = tmp_path / "run"  # a copy: its config.toml's `out` names the original directory
    shutil.copytree(stopped_cli_run, run_dir)
    (run_dir / "summary.json").unlink()
    latest = sorted((run_dir / "checkpoints").glob("*.pt"))[-1]
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 3] if damage == "truncated" else data[:64] + b"\x00" * (len(data) - 64))
    files = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".esper.lock"}
    done = _resume(run_dir)
    assert done.returncode == 2
    assert f"run checkpoint '{latest}' cannot be read: it is truncated or corrupt (" in done.stderr
    assert done.stderr.count("truncated or corrupt") == 1
    assert len(done.stderr.strip().splitlines()) == 1
    # Refused before anything is written: config.toml keeps its keys' order and its `out`.
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".esper.lock"} == files


@pytest.mark.slow
def test_cli_resume_with_another_configuration_is_refused(stopped_cli_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(stopped_cli_run, run_dir)
    (run_dir / "summary.json").unlink()
    config = (run_dir / "config.toml").read_bytes()
    for changed in (("--seed", "5"), ("--epochs", "2"), ("--reward-preset", "sparse")):
        done = _resume(run_dir, *changed)
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1
        assert "the run continues under the configuration it started with" in done.stderr
        # Refused before anything is written: the run's own config still resumes it.
        assert (run_dir / "config.toml").read_bytes() == config
    assert "([run] seed: 0 in its config.toml, 5 now)" in _resume(run_dir, "--seed", "5").stderr
    assert _resume(run_dir).returncode == 0


def test_cli_resume_of_a_project_folder_with_only_a_config_is_refused(tmp_path):
    (tmp_path / "config.toml").write_text('[run]\ntask = "micro"\nepochs = 1\ncompare_baseline = false\n')
    (tmp_path / "model.pt").write_text("PRECIOUS")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    done = _resume(tmp_path)
    assert done.returncode == 2
    assert "is not a run directory: it holds a config.toml but none of the files a run writes" in done.stderr
    assert f"pass --config '{tmp_path / 'config.toml'}'" in done.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_cli_resume_of_a_directory_that_is_no_run(tmp_path):
    done = _resume(tmp_path)
    assert done.returncode == 2 and "is not a run directory (no config.toml)" in done.stderr


# -- integers longer than Python reads, paths the OS refuses: a named error, never a traceback --
# In process (CliRunner): each is refused before any training starts.

BIG = "9" * 5000
TOO_LONG = "holds an integer too long to read (more than 4300 digits)"
RUN = ["run", "--task", "micro", "--epochs", "1", "--no-compare-baseline"]


def _refused(*args):
    """The one-line error of an ``esper`` command that must be refused with exit code 2."""
    result = CliRunner().invoke(build_cli(PluginSettings()), [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.output, result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


def _file(path, text):
    path.write_text(text)
    return path


def _resumable(tmp_path, config):
    """A run directory ``--resume`` continues, holding ``config`` as its config.toml."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(config)
    (run / "events.jsonl").write_text("")
    return run


@pytest.mark.parametrize(("args", "expected"), [
    (lambda t: [*RUN, "--out", t / "o", "--task-option", f"train_size={BIG}"],
     f"--task-option train_size: the value {TOO_LONG}"),
    (lambda t: [*RUN, "--out", t / "o", "--policy-option", f"x={BIG}"], f"--policy-option x: the value {TOO_LONG}"),
    (lambda t: ["evaluate", "--policy-checkpoint", t / "policy.pt", "--policy-option", f"sample={BIG}"],
     f"--policy-option sample: the value {TOO_LONG}"),
    (lambda t: ["discover", "--out", t / "lib.json", "--generator-option", f"x={BIG}"],
     f"--generator-option x: the value {TOO_LONG}"),
    (lambda t: ["collect", "--task", "micro", "--epochs", "1", "--episodes", "1", "--out", t / "ds",
                "--task-option", f"train_size={BIG}"], f"--task-option train_size: the value {TOO_LONG}"),
    (lambda t: [*RUN, "--out", t / "o", "--config", _file(t / "c.toml", f"[run]\nepochs = {BIG}\n")],
     f"config file '{{t}}/c.toml' {TOO_LONG}"),
    (lambda t: ["run", "--resume", _resumable(t, f'[run]\ntask = "micro"\nepochs = {BIG}\n')],
     f"config file '{{t}}/run/config.toml' {TOO_LONG}"),
    (lambda t: [*RUN, "--out", t / "o", "--blueprint-library", _file(
        t / "lib.json", '{"format": "esper-blueprint-library", "version": 1, "x": ' + "9" * 100_000 + "}")],
     f"blueprint library '{{t}}/lib.json' {TOO_LONG}"),
    # TOML reads 0x... of any length; the value is named, not written out (Python cannot write it)
    (lambda t: [*RUN, "--out", t / "o", "--config", _file(t / "c.toml", f"[run]\nseed = 0x{'F' * 4000}\n")],
     "[run] seed = (an integer of more than 4300 digits) is invalid; expected an integer ≥ 0 and ≤ "),
], ids=["task-option", "policy-option", "evaluate", "discover", "collect", "config", "resume", "library", "hex"])
def test_an_integer_longer_than_python_reads_is_named(tmp_path, args, expected):
    assert _refused(*args(tmp_path)).startswith("Error: " + expected.format(t=tmp_path))


NUL = ("a\\u0000b", "a\x00b", "it contains a NUL byte")  # as TOML spells it, as Python does, the reason
LONG = ("x" * 300, "x" * 300, "file name too long (a name of 300 bytes; at most 255)")


@pytest.mark.parametrize("path", [NUL, LONG], ids=["nul", "long"])
@pytest.mark.parametrize(("task", "config", "label"), [
    ("micro", '[run]\nout = "{}"\n', "[run] out ="),
    ("micro", '[run]\nblueprint_library = "{}"\n', "[run] blueprint_library ="),
    ("micro", '[run]\npolicy = "iql"\n[policy]\ndataset = "{}"\n', "policy 'iql' option 'dataset' ="),
    ("micro", '[run]\npolicy = "ppo"\n[policy]\nbc_dataset = "{}"\n', "policy 'ppo' option 'bc_dataset' ="),
    ("micro", '[run]\npolicy = "ppo"\n[policy]\ncheckpoint = "{}"\n', "policy checkpoint"),
    ("micro", '[run]\ntelemetry = ["csv"]\n[telemetry.csv]\npath = "{}"\n', "telemetry sink 'csv': path"),
    ("micro", '[telemetry.jsonl]\npath = "{}"\n', "telemetry sink 'jsonl': path"),
    ("textfile", '[task]\npath = "{}"\n', "text file"),
], ids=["out", "blueprint_library", "dataset", "bc_dataset", "checkpoint", "csv", "jsonl", "textfile"])
def test_a_path_the_os_refuses_is_named(tmp_path, monkeypatch, path, task, config, label):
    monkeypatch.chdir(tmp_path)  # relative paths: nothing is written outside tmp_path
    spelled, value, why = path
    out = [] if "out =" in label else ["--out", tmp_path / "run"]
    error = _refused("run", "--task", task, "--epochs", "1", "--no-compare-baseline", *out,
                     "--config", _file(tmp_path / "c.toml", config.format(spelled)))
    if label.endswith("path") and "csv" in label:  # a sink's relative path is inside the run directory
        value = str(tmp_path / "run" / value)
    assert error == f"Error: {label} {value!r} is not a usable path: {why}"


def test_a_task_data_path_with_a_name_too_long_is_named(tmp_path):
    long = tmp_path / LONG[0]
    error = _refused("run", "--task", "textfile", "--epochs", "1", "--no-compare-baseline", "--out", tmp_path / "run",
                     "--data", long)
    assert error == f"Error: text file {str(long)!r} is not a usable path: {LONG[2]}"
