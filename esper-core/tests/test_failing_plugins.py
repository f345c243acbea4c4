"""A plugin that raises anywhere is a PluginError naming the component and where it came from,
never a traceback: blueprint factory and param_estimate, a seed's forward mid-training, a task
factory, a task's host, a policy factory, an observer's factory and hook. And --param-budget
holds the seed actually built, whatever param_estimate claims."""

from __future__ import annotations

import functools
import json
import re
import types

import pytest
import torch
from engine_helpers import Germinating
from torch import nn

from esper_core import hookimpl
from esper_core.config import RunConfig
from esper_core.contracts import BlueprintSpec, Decision, PolicySpec
from esper_core.contracts.specs import ObserverSpec, TaskSpec
from esper_core.errors import PluginError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.plugins.blame import blame_plugin_code, from_traceback
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.tolaria.environments import InProcessEnvironments, WorkerEnvironments
from esper_core.tolaria.job import execute_run

MODULE = "failing_plugin"


class Wide(nn.Module):
    """51,760 parameters at width 16, whatever its estimate says."""

    def __init__(self, width):
        super().__init__()
        self.a = nn.Linear(width, 1568)
        self.b = nn.Linear(1568, width)
        nn.init.zeros_(self.b.weight)
        nn.init.zeros_(self.b.bias)

    def forward(self, h):
        return h + self.b(torch.relu(self.a(h)))


class BreaksLater(nn.Module):
    """Passes G1's probe, then fails in its third forward of training."""

    def __init__(self, width):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(width))
        self.calls = 0

    def forward(self, h):
        if self.training:
            self.calls += 1
            if self.calls == 3:
                raise ValueError("seed lost its mind")
        return h + self.scale * h


class RaisingObserver:
    def after_epoch(self, *, report):
        raise KeyError("observer bookkeeping")

    def close(self):
        pass


def _raise(exc):
    raise exc


def broken_estimate(width):
    raise ZeroDivisionError("estimate")


def _plugin():
    module = types.ModuleType(MODULE)

    @hookimpl
    def esper_register_blueprints():
        def spec(name, factory, estimate=lambda w: 0):
            return BlueprintSpec(name=name, topology=toy.TOPOLOGY, factory=factory, param_estimate=estimate,
                                 description="failing")
        return [spec("factory_raises", lambda width: _raise(RuntimeError("cannot build"))),
                spec("estimate_raises", toy.residual_linear, broken_estimate),
                spec("lies_about_size", Wide, lambda w: 1),
                spec("breaks_later", BreaksLater)]

    @hookimpl
    def esper_register_tasks():
        return [TaskSpec(name="task_raises", topology=toy.TOPOLOGY, description="failing",
                         factory=lambda **kw: _raise(FileNotFoundError("no data here"))),
                TaskSpec(name="host_raises", topology=toy.TOPOLOGY, description="failing",
                         factory=lambda **kw: types.SimpleNamespace(
                             build_host=lambda: _raise(TypeError("host needs an argument"))))]

    @hookimpl
    def esper_register_policies():
        return [PolicySpec(name="germinating", factory=Germinating, description="test"),
                PolicySpec(name="policy_raises", factory=lambda context: _raise(ImportError("no backend")),
                           description="failing")]

    @hookimpl
    def esper_register_observers():
        return [ObserverSpec(name="hook_raises", factory=lambda model, options: RaisingObserver(),
                             description="failing"),
                ObserverSpec(name="factory_raises", factory=lambda model, options: _raise(OSError("no tty")),
                             description="failing")]

    for hook in (esper_register_blueprints, esper_register_tasks, esper_register_policies, esper_register_observers):
        setattr(module, hook.__name__, hook)
    return module


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("f", _plugin())]))


def _run(catalog, tmp_path, *, policy="germinating", blueprint="toy:residual_linear", task="toy",
         observers=(), **run):
    out = create_run_dir(tmp_path / "run")
    config = RunConfig.from_dict({"run": {"task": task, "policy": policy, "epochs": 3, "compare_baseline": False,
                                          "blueprints": [blueprint], "out": str(out), "observers": list(observers),
                                          **run}})
    return execute_run(resolve_run(config, catalog), catalog, out), out


# What each failure must say: the component, the origin of its code, what it was doing, the error.
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"blueprint": "toy:factory_raises"},
     r"blueprint 'toy:factory_raises' \(from module .*\) raised in its factory: RuntimeError: cannot build"),
    ({"blueprint": "toy:estimate_raises"},
     # G0 names the blueprint; the action mask, which prices blueprints first, names the function
     r"(blueprint 'toy:estimate_raises' \(from module .*\) raised in param_estimate"
     r"|plugin code .*broken_estimate \(from module .*\) raised during the run): ZeroDivisionError: estimate"),
    ({"blueprint": "toy:breaks_later"},
     r"plugin code .*BreaksLater.forward \(from module .*\) raised during the run: ValueError: seed lost its mind"),
    ({"task": "task_raises"},
     r"task 'task_raises' \(from module .*\) raised in its factory: FileNotFoundError: no data here"),
    ({"task": "host_raises"},
     r"plugin code .*_raise \(from module .*\) raised while building the task: TypeError: host needs an argument"),
    ({"policy": "policy_raises"},
     r"policy 'policy_raises' \(from module .*\) raised in its factory: ImportError: no backend"),
    ({"observers": ["hook_raises"]},
     r"plugin code .*RaisingObserver.after_epoch \(from module .*\) raised during the run: "
     r"KeyError: 'observer bookkeeping'"),
    ({"observers": ["factory_raises"]},
     r"plugin code .*_raise \(from module .*\) raised during the run: OSError: no tty"),
])
def test_a_raising_plugin_is_named(catalog, tmp_path, kwargs, message):
    with pytest.raises(PluginError, match=message) as info:
        _run(catalog, tmp_path, **kwargs)
    assert "\n" not in str(info.value)


def test_the_origin_of_installed_plugin_code_is_its_distribution():
    from esper_core.plugins.blame import origin

    assert origin("esper_core.kasmina.model") == "esper-core"
    assert origin(MODULE) == f"module {MODULE}"


def test_a_lazy_factory_is_blamed_on_the_module_it_names():
    from esper_core.lazy import lazy
    from esper_core.plugins.blame import module_of, origin

    factory = lazy("esper_telemetry.sinks.csv_metrics:CsvMetricsSink")
    assert module_of(factory) == "esper_telemetry.sinks.csv_metrics"
    assert origin(module_of(factory)) == "esper-telemetry"  # not esper-core, whose lazy() only forwards
    assert module_of(functools.partial(origin, "x")) == "esper_core.plugins.blame"


def _caught_in(module):
    """An exception raised in torch and caught in a function of ``module`` (as the engine
    catches it), so its traceback holds that function's frame and torch's."""
    namespace = {"__name__": module, "torch": torch}
    exec("def run(inner):\n    try:\n        inner()\n    except RuntimeError as exc:\n        return exc\n",
         namespace)
    return namespace["run"]


def test_a_bug_in_esper_itself_keeps_its_traceback():
    core = _caught_in("esper_core.tolaria.fake")
    inner = {"__name__": "esper_core.kasmina.fake", "torch": torch}
    exec("def bug():\n    torch.zeros(2) @ torch.zeros(3)\n", inner)
    exc = core(inner["bug"])
    assert isinstance(exc, RuntimeError) and from_traceback(exc, during="x") is None
    plugin = {"__name__": "some_plugin.blocks", "torch": torch}
    exec("def forward():\n    torch.zeros(2) @ torch.zeros(3)\n", plugin)
    blamed = from_traceback(core(plugin["forward"]), during="in a test")
    assert blamed is not None and str(blamed).startswith(
        "plugin code some_plugin.blocks.forward (from module some_plugin.blocks) raised in a test: RuntimeError:")


def test_the_parameter_budget_holds_the_module_actually_built(catalog, tmp_path):
    summary, out = _run(catalog, tmp_path, blueprint="toy:lies_about_size", param_budget=100)
    assert summary["seed_params"] == 0 and not summary["seeds"]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    g0 = [e for e in events if e["kind"] == "gate" and e["gate"] == "g0_blueprint_fits"]
    assert g0 and not any(e["passed"] for e in g0)
    assert "toy:lies_about_size built 51760 parameters (its param_estimate said 1), only 100 of the 100 budget left" \
        in g0[0]["reason"]
    assert g0[0]["measurements"]["g0_blueprint_fits.seed_params"] == 51760
    assert not [e for e in events if e["kind"] == "seed_lifecycle"]


def test_a_seed_within_the_budget_still_germinates(catalog, tmp_path):
    summary, _ = _run(catalog, tmp_path, blueprint="toy:lies_about_size", param_budget=60000)
    assert [s["blueprint"] for s in summary["seeds"]] == ["toy:lies_about_size"]


@pytest.mark.parametrize(("run", "message"), [
    ({"task": "task_raises"},
     r"task 'task_raises' \(from module [\w.-]+\) raised in its factory: FileNotFoundError: no data here"),
    ({"observers": ["hook_raises"]},
     r"plugin code [\w.-]+\.RaisingObserver\.after_epoch \(from module [\w.-]+\) raised during the run: "
     r"KeyError: 'observer bookkeeping'"),
])
def test_a_plugin_failing_in_an_environment_worker_is_named_as_in_process(catalog, run, message):
    """PPO --workers: the error crosses the process boundary as the same one-line PluginError."""
    resolved = resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": "germinating", "epochs": 3,
                                                        "compare_baseline": False, **run}}), catalog)
    errors = []
    for cls in (InProcessEnvironments, WorkerEnvironments):
        envs = cls(resolved, n_envs=1, device="cpu", emit=lambda event: None, policy_name="germinating")
        try:
            with pytest.raises(PluginError) as info, blame_plugin_code("during the run"):
                steps = envs.start([0], [2])
                while not steps[0].done:
                    steps = envs.step([Decision.wait("test")])
        finally:
            envs.close()
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert re.fullmatch(message, errors[1])
