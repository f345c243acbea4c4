"""The gradient_health observer: hooks, events, growing/pruned models, options, engine runs."""

from __future__ import annotations

import json
import math
import types

import pytest
import torch
from torch import nn

from esper_core import hookimpl
from esper_core.config import RunConfig
from esper_core.contracts import Decision, EpochReport, Op, PolicySpec
from esper_core.contracts.events import GradientHealth, event_from_record
from esper_core.errors import ConfigError, PluginError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.tolaria.job import execute_run
from esper_telemetry import observer as observer_module
from esper_telemetry import plugin
from esper_telemetry.gradient_health import GradientHealthConfig
from esper_telemetry.observer import GradientHealthObserver, ObserverOptions, parse_observer_options


def _report(epoch: int = 1) -> EpochReport:
    return EpochReport(episode=0, epoch=epoch, max_epochs=3, train_loss=1.0, val_loss=1.0,
                       val_accuracy=50.0, host_params=10, seed_params=0, slots=())


class Growing(nn.Module):
    """A host whose optional ``extra`` layer stands in for a seed that comes and goes."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 8)
        self.last = nn.Linear(8, 2)
        self.extra: nn.Module | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.first(x))
        if self.extra is not None:
            h = h + self.extra(h)
        return self.last(h)


def _train(model: nn.Module, steps: int = 3, seed: int = 0) -> list[float]:
    """Plain training steps; returns each step's global gradient norm measured by hand."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    norms = []
    model.train()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        x = torch.randn(16, 4, generator=generator)
        model(x).square().mean().backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        norms.append(math.sqrt(sum(float(g.square().sum()) for g in grads)))
        optimizer.step()
    return norms


def _hooks_on(model) -> int:
    return len(model._forward_hooks) + sum(len(getattr(p, "_post_accumulate_grad_hooks", None) or {})
                                           for p in model.parameters())


def test_measures_each_backward_once_with_the_global_norm():
    model = Growing()
    observer = GradientHealthObserver(model)  # default profile: minimal
    assert observer.config.profile == "minimal" and observer.hook_count == 1
    assert not model._forward_pre_hooks  # only between a report and the next training step
    norms = _train(model, steps=4)
    (event,) = observer.after_epoch(report=_report(epoch=2))
    assert observer.hook_count == 1 + 1 and len(model._forward_pre_hooks) == 1
    assert isinstance(event, GradientHealth)
    assert (event.epoch, event.steps, event.profile, event.layers) == (2, 4, "minimal", [])
    assert event.global_norm_mean == pytest.approx(sum(norms) / 4, rel=1e-5)
    assert event.global_norm_max == pytest.approx(max(norms), rel=1e-5)
    assert event.score == 1.0 and event.vanishing_fraction == 0.0 and event.nonfinite_steps == 0
    # No grad-enabled backward since the report: nothing measured, nothing invented.
    (empty,) = observer.after_epoch(report=_report(epoch=3))
    assert empty.steps == 0 and empty.score is None and empty.global_norm_mean is None
    observer.close()
    assert observer.hook_count == 0 and _hooks_on(model) == 0
    assert not model._forward_pre_hooks
    assert observer.after_epoch(report=_report()) == []
    observer.close()  # idempotent


def test_hooks_do_not_change_gradients_or_training():
    torch.manual_seed(0)
    watched, plain = Growing(), Growing()
    plain.load_state_dict(watched.state_dict())
    observer = GradientHealthObserver(watched, GradientHealthConfig(profile="diagnostic"))
    _train(watched, steps=5)
    _train(plain, steps=5)
    for a, b in zip(watched.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b) and torch.equal(a.grad, b.grad)
    observer.close()


def test_parameters_that_appear_and_disappear_between_epochs():
    model = Growing()
    observer = GradientHealthObserver(model, GradientHealthConfig(profile="standard", every_n_steps=1))
    _train(model, steps=2)
    (first,) = observer.after_epoch(report=_report(1))
    assert [layer["name"] for layer in first.layers] == ["first", "last"]
    old_tracker = observer.tracker
    # The "controller" adds a seed after the report; eval / no-grad forwards do not re-sync.
    model.extra = nn.Linear(8, 8)
    model.eval()
    model(torch.randn(2, 4))
    assert observer.tracker is old_tracker
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 4))
    assert observer.tracker is old_tracker and len(model._forward_pre_hooks) == 1
    _train(model, steps=2)
    assert observer.tracker is not old_tracker and old_tracker.closed and old_tracker.hook_count == 0
    assert not model._forward_pre_hooks and observer.hook_count == 1
    (second,) = observer.after_epoch(report=_report(2))
    assert [layer["name"] for layer in second.layers] == ["first", "last", "extra"]  # module order
    assert all(layer["norm_mean"] > 0 and layer["score"] == 1.0 for layer in second.layers)
    # The seed is culled: the next training forward drops its parameters from the tracker.
    extra_params = {id(p) for p in model.extra.parameters()}
    model.extra = None
    _train(model, steps=1)
    assert not extra_params & {id(p) for p in observer.tracker.parameters}
    assert _hooks_on(model) == 1
    (third,) = observer.after_epoch(report=_report(3))
    assert [layer["name"] for layer in third.layers] == ["first", "last"]
    # An unchanged parameter set keeps its tracker.
    kept = observer.tracker
    _train(model, steps=1)
    assert observer.tracker is kept
    observer.close()
    assert _hooks_on(model) == 0 and not model._forward_pre_hooks


def test_event_layers_are_capped_to_the_worst_and_round_trip():
    model = Growing()
    model.extra = nn.Linear(8, 8)
    observer = GradientHealthObserver(model, GradientHealthConfig(profile="diagnostic"), max_layers=2)
    _train(model, steps=2)
    with torch.no_grad():  # make "last" the least healthy layer: huge gradients
        model.last.weight.grad = torch.full_like(model.last.weight, 1e4)
    observer.tracker.step()
    (event,) = observer.after_epoch(report=_report(1))
    assert event.layers_omitted == 1 and len(event.layers) == 2
    names = [layer["name"] for layer in event.layers]
    assert "last" in names and names == sorted(names, key=["first", "last", "extra"].index)
    assert all("std" in layer for layer in event.layers)
    record = json.loads(json.dumps(event.to_record()))
    assert record["kind"] == "gradient_health"
    assert event_from_record(record) == event
    observer.close()


def test_options_are_validated_with_clear_messages():
    (spec,) = plugin.esper_register_observers()
    assert spec.name == "gradient_health"
    model = Growing()
    with pytest.raises(ConfigError, match=r"^observer 'gradient_health' option 'profile' = 'verbose' is invalid; "
                                          r"expected one of 'minimal', 'standard', 'diagnostic'$"):
        spec.factory(model=model, options={"profile": "verbose"})
    with pytest.raises(ConfigError, match=r"observer 'gradient_health': unknown option 'interval'; allowed "
                                          r"options: every_n_steps, exploding_threshold, max_layers, profile"):
        spec.factory(model=model, options={"interval": 3})
    with pytest.raises(ConfigError, match="option 'max_layers' = -1 is invalid; expected an integer ≥ 0"):
        spec.factory(model=model, options={"max_layers": -1})
    with pytest.raises(ConfigError, match="every_n_steps"):
        spec.factory(model=model, options={"every_n_steps": 0})
    # A rejected option leaves no hook behind.
    assert not model._forward_pre_hooks and _hooks_on(model) == 0
    config, max_layers = parse_observer_options({"profile": "standard", "max_layers": 4})
    assert config.profile == "standard" and max_layers == 4
    observer = spec.factory(model=model, options={})
    assert observer.config.profile == "minimal"
    observer.close()
    # The options class the run's config check reads says the same default as the factory.
    assert ObserverOptions().profile == "minimal" and parse_observer_options({})[0].profile == "minimal"


# --------------------------------------------------------------------------- engine runs
class Scripted:
    """Germinate in the last slot at epoch 1, cull it at epoch 3, germinate in the first at 4;
    ``raise_at`` makes the policy fail at that epoch."""

    name = "grow_prune"
    raise_at: int | None = None

    def __init__(self, context):
        self.context = context

    def reset(self, *, episode):
        pass

    def decide(self, *, report, mask):
        if report.epoch == self.raise_at:
            raise RuntimeError("policy exploded")
        blueprint = self.context.blueprint_keys[0]
        last = mask.n_slots - 1
        if report.epoch == 1 and mask.slots[Op.GERMINATE][last]:
            return Decision(op=Op.GERMINATE, slot=last, blueprint=blueprint, reason="grow")
        if report.epoch == 3 and mask.slots[Op.CULL][last]:
            return Decision(op=Op.CULL, slot=last, reason="prune")
        if report.epoch == 4 and mask.slots[Op.GERMINATE][0]:
            return Decision(op=Op.GERMINATE, slot=0, blueprint=blueprint, reason="grow again")
        return Decision.wait("script")


class Raising(Scripted):
    name = "raising"
    raise_at = 2


def _policies():
    module = types.ModuleType("grow_prune_policies")

    @hookimpl
    def esper_register_policies():
        return [PolicySpec(name=cls.name, factory=cls, description="test") for cls in (Scripted, Raising)]

    module.esper_register_policies = esper_register_policies
    return module


@pytest.fixture
def observers(monkeypatch):
    """Every GradientHealthObserver the engine builds, through the registered lazy factory."""
    built: list[GradientHealthObserver] = []
    original = GradientHealthObserver.from_options.__func__

    def recording(cls, *, model, options):
        instance = original(cls, model=model, options=options)
        built.append(instance)
        return instance

    monkeypatch.setattr(observer_module.GradientHealthObserver, "from_options", classmethod(recording))
    return built


def _toy_run(tmp_path, policy: str, *, name: str = "run", observers=None, **observer_options):
    loaded = load_plugins(PluginSettings(autoload=False),
                          extra=[("toy", toy), ("policies", _policies()), ("telemetry", plugin)])
    catalog = build_catalog(loaded)
    run = {"task": "toy", "policy": policy, "epochs": 6, "compare_baseline": False}
    if observers is not None:
        run["observers"] = observers
    config = RunConfig.from_dict({"run": run, "observers": {"gradient_health": observer_options}})
    out = create_run_dir(tmp_path / name)
    return execute_run(resolve_run(config, catalog), catalog, out), out


def _events(out, kind):
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()
            if f'"kind": "{kind}"' in line]


def test_engine_run_follows_seeds_that_come_and_go(tmp_path, observers):
    _, out = _toy_run(tmp_path, "grow_prune", profile="standard", every_n_steps=1)
    reports = _events(out, "gradient_health")
    assert [r["epoch"] for r in reports] == [1, 2, 3, 4, 5, 6]
    assert all(r["steps"] == 8 and r["score"] == 1.0 for r in reports)  # 256 samples / 32
    lifecycle = [(e["epoch"], e["slot"], e["to_stage"]) for e in _events(out, "seed_lifecycle")]
    assert (3, "hidden2", "CULLED") in lifecycle and (4, "hidden1", "GERMINATED") in lifecycle

    def seed_layers(report):
        return {layer["name"] for layer in report["layers"] if ".seed" in layer["name"]}

    by_epoch = {r["epoch"]: seed_layers(r) for r in reports}
    assert by_epoch[1] == set()  # germinated after epoch 1's training
    assert by_epoch[2] == by_epoch[3] == {"slots.hidden2.seed.linear"}
    assert by_epoch[4] == set()  # culled at epoch 3
    assert by_epoch[5] == by_epoch[6] == {"slots.hidden1.seed.linear"}
    assert all(layer["norm_mean"] > 0 for r in reports for layer in r["layers"])
    (observer,) = observers
    assert observer.hook_count == 0 and not observer.model._forward_pre_hooks
    assert _hooks_on(observer.model) == 0


def test_a_growing_run_trains_identically_with_and_without_the_observer(tmp_path):
    watched, watched_out = _toy_run(tmp_path, "grow_prune", name="watched", profile="diagnostic")
    plain, plain_out = _toy_run(tmp_path, "grow_prune", name="plain", observers=[])
    assert _events(watched_out, "gradient_health") and not _events(plain_out, "gradient_health")

    def curve(out):
        return [(e["epoch"], e["train_loss"], e["val_loss"], e["val_accuracy"], e["slots"])
                for e in _events(out, "epoch")]

    assert curve(watched_out) == curve(plain_out)
    assert watched["final_accuracy"] == plain["final_accuracy"]
    assert watched["seeds"] == plain["seeds"]


def test_hooks_are_removed_when_the_run_raises(tmp_path, observers):
    # The engine reports a raising policy as a PluginError naming it.
    with pytest.raises(PluginError, match="policy 'raising' raised.*policy exploded"):
        _toy_run(tmp_path, "raising")
    (observer,) = observers
    assert observer.hook_count == 0 and observer.tracker.closed
    assert not observer.model._forward_pre_hooks and _hooks_on(observer.model) == 0
