"""``esper export``: the grown network as a plain module, loadable without Esper."""

from __future__ import annotations

import importlib.util
import json
import site
import subprocess
import sys
import warnings

import pytest
import torch
from engine_helpers import _policies_plugin

import esper_core
from esper_core.config import RunConfig
from esper_core.errors import ConfigError
from esper_core.kasmina import MorphogeneticModel
from esper_core.kasmina.slot import SeedSlot
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage import export as export_module
from esper_core.storage.export import BlendedSeed, export_model, fold, load_run_model
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.testing.distributions import run_esper
from esper_core.tolaria.job import execute_run


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("s", _policies_plugin())]))


def _finished_run(catalog, root, epochs):
    out = create_run_dir(root / f"run{epochs}")
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "scripted", "epochs": epochs,
                                          "compare_baseline": False, "out": str(out)},
                                  "gates": {"g5_min_contribution": -100.0}})
    summary = execute_run(resolve_run(config, catalog), catalog, out)
    return out, summary


@pytest.fixture(scope="module")
def fossil_run(catalog, tmp_path_factory):
    out, summary = _finished_run(catalog, tmp_path_factory.mktemp("e"), 8)
    assert [s["outcome"] for s in summary["seeds"]] == ["fossilized"]
    return out


def _without_esper(code: str, tmp_path) -> dict:
    """Run ``code`` in an interpreter that has torch (and onnxruntime) but no Esper: ``-S``
    skips the site-packages ``.pth`` files that put the editable Esper sources on the path."""
    script = tmp_path / "plain.py"
    script.write_text(f"import sys\nsys.path.extend({site.getsitepackages()!r})\nimport importlib.util\n"
                      "assert importlib.util.find_spec('esper_core') is None, 'esper is importable'\n" + code)
    done = subprocess.run([sys.executable, "-S", str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_fold_has_no_slot_machinery_and_matches_the_live_model(catalog, fossil_run):
    model, example, info = load_run_model(fossil_run, catalog)
    plain = fold(model)
    assert not any(isinstance(m, SeedSlot | MorphogeneticModel) for m in plain.modules())
    assert [r["stage"] for r in info["architecture"]] == ["DORMANT", "FOSSILIZED"]
    assert len(plain) == 4  # segment, segment, fossil, head
    with torch.no_grad():
        assert torch.allclose(plain(example), model(example), atol=1e-5, rtol=0)
    counted = sum(p.numel() for p in plain.parameters())
    assert counted == sum(p.numel() for p in model.parameters())


def test_a_seed_still_blending_is_exported_at_its_alpha(catalog, tmp_path):
    out, _ = _finished_run(catalog, tmp_path, 3)
    model, example, info = load_run_model(out, catalog)
    stages = [r["stage"] for r in info["architecture"]]
    assert stages[-1] in {"BLENDING", "SHADOWING", "PROBATIONARY"}, stages
    plain = fold(model)
    assert any(isinstance(m, BlendedSeed) for m in plain)
    with torch.no_grad():
        assert torch.allclose(plain(example), model(example), atol=1e-5, rtol=0)


def test_torchscript_runs_without_esper(catalog, fossil_run, tmp_path):
    path = export_model(fossil_run, catalog, fmt="torchscript")
    assert path == fossil_run / "model.ts"
    model, example, _ = load_run_model(fossil_run, catalog)
    torch.save({"x": example, "y": model(example).detach()}, tmp_path / "io.pt")
    got = _without_esper(f"""
import json, torch
io = torch.load({str(tmp_path / 'io.pt')!r})
m = torch.jit.load({str(path)!r})
print(json.dumps({{"diff": float((m(io["x"]) - io["y"]).abs().max()), "batch": m(io["x"][:1]).shape[0]}}))
""", tmp_path)
    assert got["diff"] <= 1e-5 and got["batch"] == 1


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
                    reason="the onnx extra is not installed")
def test_onnx_runs_without_esper(catalog, fossil_run, tmp_path):
    path = export_model(fossil_run, catalog, fmt="onnx", out=tmp_path / "m.onnx")
    model, example, _ = load_run_model(fossil_run, catalog)
    torch.save({"x": example, "y": model(example).detach()}, tmp_path / "io.pt")
    got = _without_esper(f"""
import json, torch, onnxruntime
io = torch.load({str(tmp_path / 'io.pt')!r})
s = onnxruntime.InferenceSession({str(path)!r}, providers=["CPUExecutionProvider"])
(y,) = s.run(None, {{"input": io["x"].numpy()}})
print(json.dumps({{"diff": float((torch.from_numpy(y) - io["y"]).abs().max())}}))
""", tmp_path)
    assert got["diff"] <= 1e-5


def test_state_dict_loads_into_the_plain_structure(catalog, fossil_run, tmp_path):
    path = export_model(fossil_run, catalog, fmt="state-dict", out=tmp_path / "sd.pt")
    saved = torch.load(path, weights_only=True)
    model, example, _ = load_run_model(fossil_run, catalog)
    plain = fold(model)
    assert saved["layers"] == [type(m).__name__ for m in plain]
    fresh = fold(load_run_model(fossil_run, catalog)[0])
    for p in fresh.parameters():
        p.data.zero_()
    fresh.load_state_dict(saved["state_dict"])
    with torch.no_grad():
        assert torch.equal(fresh(example), plain(example))


def test_onnx_without_the_extra_names_the_missing_package(catalog, fossil_run, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(export_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(ConfigError, match=r"ONNX export needs the 'onnx' package: pip install 'esper-core\[onnx\]'"):
        export_model(fossil_run, catalog, fmt="onnx")


def test_export_errors(catalog, fossil_run, tmp_path):
    with pytest.raises(ConfigError, match="is not a run directory"):
        export_model(tmp_path, catalog, fmt="torchscript")
    with pytest.raises(ConfigError, match="would replace 'model.pt' of the run"):
        export_model(fossil_run, catalog, fmt="state-dict", out=fossil_run / "model.pt")
    config = (fossil_run / "config.toml").read_text()
    with pytest.raises(ConfigError, match="would replace 'config.toml' of the run"):
        export_model(fossil_run, catalog, fmt="torchscript", out=fossil_run / "config.toml")
    with pytest.raises(ConfigError, match="would replace 'summary.json' of the run"):  # its contract would
        export_model(fossil_run, catalog, fmt="torchscript", out=fossil_run / "summary")
    assert (fossil_run / "config.toml").read_text() == config
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.toml").write_text((fossil_run / "config.toml").read_text())
    with pytest.raises(ConfigError, match="has no model.pt yet"):
        export_model(unfinished, catalog, fmt="torchscript")
    (unfinished / "model.pt").write_bytes(b"not a model")
    with pytest.raises(Exception, match="model.pt' cannot be read: it is not a file torch.save writes"):
        export_model(unfinished, catalog, fmt="torchscript")
    # a finished run whose model was removed since: resuming would refuse, so that is not the hint
    (unfinished / "model.pt").unlink()
    (unfinished / "summary.json").write_text((fossil_run / "summary.json").read_text())
    with pytest.raises(ConfigError, match=r"finished, but its model.pt is missing \(moved or deleted\); restore"):
        export_model(unfinished, catalog, fmt="torchscript")


def test_cli_export_of_a_missing_run_is_a_clear_error(tmp_path):
    done = run_esper(["export", str(tmp_path / "nope"), "--format", "state-dict"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is not a run directory" in done.stderr


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(architecture=[1, 2]), "architecture record 0 is int, not a table"),
    (lambda d: d["architecture"][0].update(stage="EVIL"), "stage 'EVIL' is not a lifecycle stage"),
    (lambda d: d["architecture"][-1].update(alpha="all"), "alpha 'all' is not a number in \\[0, 1\\]"),
    (lambda d: d["architecture"][0].update(slot=["x"]), "slot is not a name"),
    (lambda d: d.update(state_dict=[1]), "cannot be read .TypeError."),
])
def test_a_crafted_model_file_is_a_clear_error(catalog, fossil_run, tmp_path, change, message):
    import shutil

    from esper_core.errors import CheckpointError

    run = tmp_path / "run"
    shutil.copytree(fossil_run, run)
    data = torch.load(run / "model.pt", weights_only=True)
    change(data)
    torch.save(data, run / "model.pt")
    with pytest.raises(CheckpointError, match=message) as info:
        load_run_model(run, catalog)
    assert "model.pt" in str(info.value) and "\n" not in str(info.value)


def _contract(path):
    return json.loads(path.with_name(path.name + ".json").read_text())


def test_every_export_has_a_sidecar_contract_and_a_task_without_one_says_so(catalog, fossil_run, tmp_path):
    _, example, _ = load_run_model(fossil_run, catalog)
    for fmt in ("state-dict", "torchscript"):
        path = export_model(fossil_run, catalog, fmt=fmt, out=tmp_path / f"m.{fmt}")
        contract = _contract(path)
        assert contract["input"] == {"shape": list(example.shape[1:]), "dtype": "float32"}
        assert contract["task"] == "toy" and contract["format"] == fmt
        assert contract["esper_version"] == esper_core.__version__
        assert str(path.name) in contract["loading_example"]
        # The toy task has no input_contract(): the sidecar says its shape and dtype are all it knows.
        assert "shape and dtype only" in contract["note"]


def test_the_contract_is_inside_the_torchscript_file(catalog, fossil_run, tmp_path):
    path = export_model(fossil_run, catalog, fmt="torchscript", out=tmp_path / "m.ts")
    extra = {"esper_contract.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["esper_contract.json"]) == _contract(path)


def test_torch_export_format_loads_with_torch_export_and_carries_the_contract(catalog, fossil_run, tmp_path):
    path = export_model(fossil_run, catalog, fmt="torch-export")
    assert path == fossil_run / "model.pt2"
    extra = {"esper_contract.json": ""}
    program = torch.export.load(path, extra_files=extra)
    assert json.loads(extra["esper_contract.json"])["format"] == "torch-export"
    model, example, _ = load_run_model(fossil_run, catalog)
    with torch.no_grad():
        assert torch.allclose(program.module()(example[:2]), model(example[:2]), atol=1e-5, rtol=0)


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="the onnx extra is not installed")
def test_the_contract_is_in_the_onnx_metadata(catalog, fossil_run, tmp_path):
    import onnx

    path = export_model(fossil_run, catalog, fmt="onnx", out=tmp_path / "m.onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["esper_contract"]) == _contract(path)


def test_a_task_contract_is_merged_into_the_sidecar():
    class Task:
        name = "t"

        def input_contract(self):
            return {"input": {"layout": "NCHW"}, "class_names": ["a", "b"], "normalisation": {"mean": [1.0]}}

    contract = export_module.input_contract(Task(), torch.zeros(2, 3, 4, 4))
    assert contract["input"] == {"shape": [3, 4, 4], "dtype": "float32", "layout": "NCHW"}
    assert contract["class_names"] == ["a", "b"] and contract["normalisation"] == {"mean": [1.0]}
    assert "note" not in contract


def test_export_of_a_policy_training_run_says_what_it_is(catalog, fossil_run, tmp_path):
    run = tmp_path / "ppo"
    run.mkdir()
    (run / "config.toml").write_text((fossil_run / "config.toml").read_text())
    (run / "policy.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="policy-training run keeps no grown model to export") as info:
        export_model(run, catalog, fmt="torchscript")
    assert "has not finished" not in str(info.value) and "esper evaluate" in str(info.value)


def test_the_default_export_is_torch_export_and_runs_without_esper(catalog, fossil_run, tmp_path):
    import shutil

    from click.testing import CliRunner

    from esper_core.cli import export_cmd
    from esper_core.cli.app import AppState

    # The CLI's torch-free copy of the formats agrees with the exporter's.
    assert sorted(export_cmd.FORMATS) == sorted(export_module.FORMATS)
    assert export_cmd.DEFAULT_FORMAT == export_module.DEFAULT_FORMAT == "torch-export"
    run = tmp_path / "run"
    shutil.copytree(fossil_run, run, ignore=shutil.ignore_patterns("model.pt2*", "model.ts*"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = CliRunner().invoke(export_cmd.export_command, [str(run)],
                                  obj=AppState(PluginSettings(autoload=False), _catalog=catalog))
    assert done.exit_code == 0, done.output
    assert f"wrote {run / 'model.pt2'}" in done.output and (run / "model.pt2.json").is_file()
    assert not [w for w in caught if issubclass(w.category, FutureWarning | DeprecationWarning)]
    got = _without_esper(f"""
import json, torch
m = torch.export.load({str(run / 'model.pt2')!r}).module()
print(json.dumps({{"batch": [m(torch.randn(n, 8)).shape[0] for n in (1, 5)]}}))  # toy: 8 features
""", tmp_path)
    assert got["batch"] == [1, 5]


def test_a_torch_export_stores_only_its_small_sample_input(catalog, fossil_run, tmp_path):
    path = export_model(fossil_run, catalog, fmt="torch-export", out=tmp_path / "m.pt2")
    (sample,), _ = torch.export.load(path).example_inputs
    assert sample.untyped_storage().nbytes() == sample.nbytes  # not the whole validation batch
