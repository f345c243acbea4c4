"""Third-party plugins end to end: wheels of the example plugin and of a freshly scaffolded one,
installed into a new virtual environment beside the Esper distributions, run, and uninstalled.

The virtual environment is made without pip and sees this environment's packages (torch and the
editable Esper distributions) through one ``.pth`` file, so nothing is downloaded or reinstalled;
the plugin wheels are the only things installed into it. The tests share it and run in file
order: the last one uninstalls both plugins.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from esper_core.testing.distributions import run_esper

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "esper-example-plugin"
SCAFFOLD = "esper-authoring-check"  # plugin "authoring_check"
DISTRIBUTIONS = ("esper-example-plugin", SCAFFOLD)
BLUEPRINTS = ("cnn:pointwise_mlp", "cnn:authoring_check_residual")
# Two slots (micro's default) and two seeds: the eager policy germinates one blueprint per epoch.
RUN = ["run", "--task", "micro", "--epochs", "2", "--no-compare-baseline", "--observers", "", "--json"]


class Venv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "venv" / "bin" / "python"

    def _run(self, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ESPER_", "PYTHONPATH"))}
        env["OMP_NUM_THREADS"] = "1"
        return subprocess.run(args, capture_output=True, text=True, env=env, cwd=self.root, timeout=timeout)

    def esper(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The ``esper`` CLI as this environment's interpreter runs it."""
        return self._run([str(self.python), "-c", "from esper_core.cli.main import main; main()", *args])

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self._run([sys.executable, "-m", "pip", "--python", str(self.python), *args])
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    def origin(self, module: str) -> Path:
        code = f"import importlib.util; print(importlib.util.find_spec({module!r}).origin)"
        return Path(_ok(self._run([str(self.python), "-c", code])).strip())

    def importable(self, module: str) -> bool:
        code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
        return self._run([str(self.python), "-c", code]).returncode == 0


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    root = tmp_path_factory.mktemp("authoring")
    scaffold = root / "scaffold"
    made = run_esper(["new-plugin", SCAFFOLD, "--dir", str(scaffold)], env={"OMP_NUM_THREADS": "1"})
    assert made.returncode == 0, made.stderr
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    example = root / "example"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    wheels = root / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(wheels), str(example), str(scaffold)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    assert sorted(p.name for p in wheels.glob("*.whl")) == ["esper_authoring_check-0.1.0-py3-none-any.whl",
                                                            "esper_example_plugin-0.1.0-py3-none-any.whl"]
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=120)
    env = Venv(root)
    site = _ok(env._run([str(env.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]))
    beside = sysconfig.get_paths()["purelib"]
    # addsitedir, not a bare path line: it also runs the editable installs' own .pth files.
    (Path(site.strip()) / "esper-beside.pth").write_text(f"import site; site.addsitedir({beside!r})\n")
    env.pip("install", "--no-deps", "--no-index", "-q", *map(str, sorted(wheels.glob("*.whl"))))
    return env


def _plugins(env: Venv) -> dict[str, dict]:
    data = json.loads(_ok(env.esper("plugins", "--json")))
    assert data["failures"] == [] and data["error"] is None
    return {p["distribution"]: p for p in data["plugins"]}


def _cnn_blueprints(env: Venv) -> dict[str, str]:
    rows = json.loads(_ok(env.esper("blueprints", "--json", "--topology", "cnn")))["blueprints"]
    return {f"cnn:{r['name']}": r["distribution"] for r in rows}


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_plugins_and_blueprints_list_both_distributions(venv: Venv) -> None:
    plugins = _plugins(venv)
    example, scaffolded = plugins["esper-example-plugin"], plugins[SCAFFOLD]
    assert (example["name"], example["version"]) == ("example", "0.1.0")
    assert example["module"] == "esper_example_plugin.plugin"
    assert venv.origin("esper_example_plugin").is_relative_to(venv.root / "venv")  # the wheel, not the sources
    assert example["components"] == {"blueprints": ["cnn:pointwise_mlp"], "policies": ["eager"], "sinks": ["timeline"]}
    assert scaffolded["components"] == {
        "blueprints": ["cnn:authoring_check_residual"], "policies": ["authoring_check"],
        "sinks": ["authoring_check"], "reward_terms": ["authoring_check_accuracy_delta"]}
    assert "esper-blueprints-cnn" in plugins and "esper-policies" in plugins  # the editable installs, beside
    blueprints = _cnn_blueprints(venv)
    assert blueprints["cnn:pointwise_mlp"] == "esper-example-plugin"
    assert blueprints["cnn:authoring_check_residual"] == SCAFFOLD
    assert "pointwise_mlp" in _ok(venv.esper("blueprints", "--topology", "cnn"))


def test_the_example_policy_germinates_both_blueprints_and_both_sinks_receive_events(venv: Venv) -> None:
    out = venv.root / "run-eager"
    result = venv.esper(*RUN, "--out", str(out), "--policy", "eager", "--max-seeds", "2",
                        "--blueprints", "pointwise_mlp,authoring_check_residual",
                        "--telemetry", "jsonl,timeline,authoring_check")
    summary = json.loads(_ok(result))
    assert summary["policy"] == "eager"
    assert [(s["blueprint"], s["germinated_epoch"]) for s in summary["seeds"]] == [
        ("cnn:pointwise_mlp", 1), ("cnn:authoring_check_residual", 2)]
    events = _records(out / "events.jsonl")
    decisions = [e for e in events if e["kind"] == "decision"]
    assert [(d["policy"], d["op"], d["blueprint"]) for d in decisions] == [
        ("eager", "GERMINATE", "cnn:pointwise_mlp"), ("eager", "GERMINATE", "cnn:authoring_check_residual")]
    timeline = [line.split("\t", 2) for line in (out / "timeline.tsv").read_text().splitlines()]
    assert [json.loads(r[2]) for r in timeline] == events
    assert [(int(r[0]), r[1]) for r in timeline] == [(e["epoch"], e["kind"]) for e in events]
    assert _records(out / "authoring_check_events.jsonl") == events
    rewards = [e for e in events if e["kind"] == "reward"]
    assert len(rewards) == 2 and all("authoring_check_accuracy_delta" in r["terms"] for r in rewards)


def test_the_scaffolded_policy_runs_with_its_option(venv: Venv) -> None:
    out = venv.root / "run-scaffolded"
    result = venv.esper(*RUN, "--out", str(out), "--policy", "authoring_check", "--policy-option", "germinate_at=2",
                        "--blueprints", "authoring_check_residual")
    summary = json.loads(_ok(result))
    assert [(s["blueprint"], s["germinated_epoch"]) for s in summary["seeds"]] == [("cnn:authoring_check_residual", 2)]
    decisions = [e for e in _records(out / "events.jsonl") if e["kind"] == "decision"]
    assert [(d["policy"], d["op"]) for d in decisions] == [("authoring_check", "WAIT"),
                                                           ("authoring_check", "GERMINATE")]
    assert decisions[0]["reason"] == "epoch 1 is before germinate_at=2"


def test_uninstalling_removes_every_component(venv: Venv) -> None:
    venv.pip("uninstall", "-y", "-q", *DISTRIBUTIONS)
    plugins = _plugins(venv)
    assert not set(DISTRIBUTIONS) & set(plugins)
    assert "esper-blueprints-cnn" in plugins
    blueprints = _cnn_blueprints(venv)
    assert not set(BLUEPRINTS) & set(blueprints) and "cnn:conv_light" in blueprints
    for module in ("esper_example_plugin", "esper_authoring_check"):
        assert not venv.importable(module), module
    gone = venv.esper(*RUN, "--policy", "eager")
    assert gone.returncode == 2
    assert "unknown policy 'eager'" in gone.stderr and "Traceback" not in gone.stderr
