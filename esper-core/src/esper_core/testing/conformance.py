"""Base test classes every blueprint, policy, telemetry sink and reward term must pass.

They are plain pytest classes (no ``Test`` prefix, so pytest only collects the subclasses that
plugin authors write). Inputs are generated on the fly; nothing is downloaded.
"""

from __future__ import annotations

import copy
import functools
import math
import random
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from esper_core.contracts.decisions import ActionMask, Decision, Op
from esper_core.contracts.events import (
    Anomaly,
    DecisionMade,
    EpochEnded,
    GateEvaluated,
    GovernorRollback,
    PPOUpdate,
    RewardComputed,
    RunEnded,
    RunStarted,
    SeedLifecycle,
    TelemetryEvent,
)
from esper_core.contracts.protocols import Policy, PolicyContext, RewardContext, Sink
from esper_core.contracts.reports import EpochReport, SlotReport
from esper_core.contracts.specs import BlueprintSpec, RewardTermSpec, TopologySpec
from esper_core.contracts.stages import LIVE_STAGES, SeedStage

# --------------------------------------------------------------------------------------------
# Blueprints


@functools.cache
def installed_topology(name: str) -> TopologySpec:
    """The installed plugins' declaration of topology ``name`` (its tensor layout)."""
    from esper_core.plugins import PluginSettings, build_catalog, load_plugins

    topologies = build_catalog(load_plugins(PluginSettings.from_env())).topologies
    if name not in topologies:
        known = ", ".join(topologies.names()) or "none"
        raise LookupError(f"no installed plugin declares the topology {name!r} (esper_register_topologies; "
                          f"installed: {known}): install its distribution, set the conformance class's "
                          "topology, or override make_input")
    return topologies.get(name)


class BlueprintConformance:
    """Checks for one :class:`BlueprintSpec`: set ``spec`` in the subclass.

    Inputs come from the installed plugin that provides the blueprint's topology
    (``TopologySpec.example_input``: ``(batch, width, size, size)`` for ``cnn``, ``(batch, size,
    width)`` for ``transformer``); set ``topology`` to a :class:`TopologySpec` to test without
    installing that plugin, or override :meth:`make_input`.
    """

    spec: ClassVar[BlueprintSpec]
    widths: ClassVar[tuple[int, ...]] = (1, 8, 32)
    sizes: ClassVar[tuple[int, ...]] = (1, 8, 32)
    scriptable: ClassVar[bool] = True
    identity_atol: ClassVar[float] = 1e-6
    topology: ClassVar[TopologySpec | None] = None

    def make_input(self, width: int, size: int, seed: int = 0) -> Any:
        import torch

        topology = self.topology or installed_topology(self.spec.topology)
        generator = torch.Generator().manual_seed(seed)
        return topology.example_input(width=width, size=size, batch=2, generator=generator)

    def build(self, width: int, seed: int = 0) -> Any:
        import torch

        torch.manual_seed(seed)
        return self.spec.factory(width=width)

    def _cases(self) -> Iterator[tuple[int, int]]:
        for width in self.widths:
            for size in self.sizes:
                yield width, size

    def test_shape_preserved_and_finite(self) -> None:
        import torch

        for width, size in self._cases():
            module = self.build(width)
            x = self.make_input(width, size)
            y = module(x)
            assert y.shape == x.shape, f"{self.spec.key} width={width} size={size}: {tuple(y.shape)}"
            assert torch.isfinite(y).all(), f"{self.spec.key} width={width} size={size}: non-finite output"

    def test_backward(self) -> None:
        for width in self.widths:
            module = self.build(width)
            x = self.make_input(width, max(self.sizes)).requires_grad_(True)
            module(x).square().mean().backward()
            assert x.grad is not None, f"{self.spec.key}: no gradient reaches the input"
            for name, param in module.named_parameters():
                if param.requires_grad:
                    assert param.grad is not None, f"{self.spec.key}: parameter {name} got no gradient"

    def test_param_estimate_is_exact(self) -> None:
        for width in self.widths:
            module = self.build(width)
            actual = sum(p.numel() for p in module.parameters())
            assert self.spec.param_estimate(width) == actual, (
                f"{self.spec.key} width={width}: estimate {self.spec.param_estimate(width)} != {actual}"
            )

    def test_deterministic_under_seed(self) -> None:
        import torch

        width = max(self.widths)
        x = self.make_input(width, max(self.sizes))
        a, b = self.build(width, seed=7), self.build(width, seed=7)
        a.eval()
        b.eval()
        assert torch.equal(a(x), b(x)), f"{self.spec.key}: same seed, different outputs"

    def test_scriptable(self) -> None:
        import pytest
        import torch

        if not self.scriptable:
            pytest.skip(f"{self.spec.key} declares itself not TorchScript-scriptable")
        width = max(self.widths)
        module = self.build(width).eval()
        with warnings.catch_warnings():
            # Scripting is what this test checks (esper export --format torchscript); torch's
            # notice that TorchScript is deprecated is not a finding about the blueprint.
            warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", FutureWarning)
            scripted = torch.jit.script(module)
        x = self.make_input(width, 8)
        torch.testing.assert_close(scripted(x), module(x))

    def test_identity_at_init_when_claimed(self) -> None:
        import pytest
        import torch

        if not self.spec.identity_at_init:
            pytest.skip(f"{self.spec.key} does not claim identity at init")
        for width, size in self._cases():
            module = self.build(width).eval()
            x = self.make_input(width, size)
            torch.testing.assert_close(module(x), x, atol=self.identity_atol, rtol=0)

    def test_spec_is_well_formed(self) -> None:
        assert self.spec.description.strip()
        assert self.spec.param_estimate(1) >= 0


# --------------------------------------------------------------------------------------------
# Reports and masks for policies and reward terms


def sample_reports(n_slots: int = 2, epochs: int = 12, seed: int = 0) -> list[EpochReport]:
    """A plausible sequence of epoch reports with seeds moving through the lifecycle."""
    rng = random.Random(seed)
    stages = [SeedStage.DORMANT, SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING,
              SeedStage.SHADOWING, SeedStage.PROBATIONARY, SeedStage.FOSSILIZED, SeedStage.CULLED,
              SeedStage.EMBARGOED, SeedStage.RESETTING]
    reports = []
    accuracy = 20.0
    for epoch in range(1, epochs + 1):
        accuracy = min(99.0, accuracy + rng.uniform(-1.0, 4.0))
        slots = []
        for i in range(n_slots):
            stage = rng.choice(stages)
            live = stage in LIVE_STAGES or stage is SeedStage.FOSSILIZED
            slots.append(SlotReport(
                slot=f"slot{i}", index=i, width=8, stage=stage,
                blueprint="cnn:conv_light" if live else None,
                epochs_in_stage=rng.randint(0, 5), alpha=rng.random() if live else 0.0,
                contribution=rng.uniform(-2, 3) if live else None,
                seed_gain=rng.uniform(-1, 1) if live else None,
                gradient_ratio=rng.uniform(0, 2), seed_params=rng.randint(0, 500) if live else 0,
                germinated_epoch=max(1, epoch - 3) if live else None,
                accuracy_at_germination=accuracy - 2 if live else None,
            ))
        reports.append(EpochReport(
            episode=0, epoch=epoch, max_epochs=epochs, train_loss=rng.uniform(0.1, 2.0),
            val_loss=rng.uniform(0.1, 2.0), val_accuracy=accuracy, host_params=5000,
            seed_params=sum(s.seed_params for s in slots), slots=slots, max_seeds=1,
        ))
    return reports


def _random_mask(rng: random.Random, n_slots: int, keys: tuple[str, ...]) -> ActionMask:
    return ActionMask(
        slots=[[rng.random() < 0.5 for _ in range(n_slots)] for _ in Op],
        blueprints=[rng.random() < 0.7 for _ in keys],
        blueprint_keys=keys,
    )


class PolicyConformance:
    """Checks for a policy: implement :meth:`make_policy` (or set ``spec``)."""

    spec: ClassVar[Any] = None
    blueprint_keys: ClassVar[tuple[str, ...]] = ("cnn:noop", "cnn:conv_light", "cnn:attention")
    n_slots: ClassVar[int] = 2

    def context(self, seed: int = 0) -> PolicyContext:
        return PolicyContext(slot_names=[f"slot{i}" for i in range(self.n_slots)],
                             blueprint_keys=self.blueprint_keys, topology="cnn", max_epochs=12,
                             seed=seed)

    def make_policy(self, context: PolicyContext) -> Policy:
        return self.spec.factory(context=context)

    def _episode(self, seed: int) -> list[Decision]:
        rng = random.Random(seed)
        policy = self.make_policy(self.context(seed))
        policy.reset(episode=0)
        out = []
        for report in sample_reports(self.n_slots, seed=seed):
            mask = _random_mask(rng, self.n_slots, self.blueprint_keys)
            decision = policy.decide(report=report, mask=mask)
            assert isinstance(decision, Decision), f"decide() returned {type(decision).__name__}"
            assert mask.allows(decision), f"{decision.describe()} is not allowed by the mask"
            assert decision.reason.strip(), "every decision needs a reason"
            out.append(decision)
        return out

    def test_decisions_respect_masks(self) -> None:
        for seed in range(5):
            self._episode(seed)

    def test_deterministic_for_a_seed(self) -> None:
        assert self._episode(3) == self._episode(3)

    def test_has_a_name(self) -> None:
        policy = self.make_policy(self.context())
        assert isinstance(policy.name, str) and policy.name


# --------------------------------------------------------------------------------------------
# Telemetry sinks


def sample_event_stream(run_id: str = "run-1") -> list[TelemetryEvent]:
    """One of every event type, in a plausible order."""
    return [
        RunStarted(run_id=run_id, task="shapes", policy="heuristic", seed=0, config={"run": {"epochs": 2}}),
        EpochEnded(run_id=run_id, epoch=1, train_loss=1.5, val_loss=1.4, val_accuracy=41.0,
                   host_params=5000, seed_params=0, seconds=0.5,
                   slots=[{"slot": "block2", "stage": "DORMANT", "blueprint": None, "alpha": 0.0,
                           "contribution": None, "seed_params": 0}]),
        DecisionMade(run_id=run_id, epoch=1, policy="heuristic", op="GERMINATE", slot="block2",
                     blueprint="cnn:conv_light", reason="plateau", confidence=0.8),
        GateEvaluated(run_id=run_id, epoch=1, slot="block2", gate="g0_blueprint_fits",
                      target="GERMINATED", passed=True, reason="fits", measurements={"params": 600.0}),
        SeedLifecycle(run_id=run_id, epoch=1, slot="block2", blueprint="cnn:conv_light",
                      from_stage="DORMANT", to_stage="GERMINATED", reason="germinate"),
        RewardComputed(run_id=run_id, epoch=1, total=-0.1, terms={"action_cost": -0.1}),
        GovernorRollback(run_id=run_id, epoch=2, slot="block2", cause="non-finite loss", step=3),
        Anomaly(run_id=run_id, epoch=2, slot="block2", signature="nan_inf", detail="loss", value=None),
        PPOUpdate(run_id=run_id, epoch=2, update=1, metrics={"losses/policy": 0.1}),
        EpochEnded(run_id=run_id, epoch=2, train_loss=1.2, val_loss=1.1, val_accuracy=48.5,
                   host_params=5000, seed_params=600, seconds=0.5,
                   slots=[{"slot": "block2", "stage": "TRAINING", "blueprint": "cnn:conv_light",
                           "alpha": 0.0, "contribution": None, "seed_params": 600}]),
        RunEnded(run_id=run_id, epoch=2, summary={"final_accuracy": 48.5}),
    ]


class SinkConformance:
    """Checks for a sink: implement :meth:`make_sink`; optionally :meth:`read_back`."""

    def make_sink(self, run_dir: Path) -> Sink:
        raise NotImplementedError

    def read_back(self, run_dir: Path) -> list[dict[str, Any]] | None:
        """Records the sink wrote (as ``to_record()`` dicts), or None if it cannot be read back."""
        return None

    def test_accepts_every_event_type(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        for event in sample_event_stream():
            sink.emit(event)
        sink.flush()
        sink.close()

    def test_round_trip(self, tmp_path: Path) -> None:
        import pytest

        sink = self.make_sink(tmp_path)
        events = sample_event_stream()
        for event in events:
            sink.emit(event)
        sink.close()
        records = self.read_back(tmp_path)
        if records is None:
            pytest.skip("this sink cannot be read back")
        expected = [e.to_record() for e in events]
        assert [(r["kind"], r["epoch"]) for r in records] == [(r["kind"], r["epoch"]) for r in expected]

    def test_flush_before_close_makes_output_durable(self, tmp_path: Path) -> None:
        import pytest

        sink = self.make_sink(tmp_path)
        events = sample_event_stream()[:2]
        for event in events:
            sink.emit(event)
        sink.flush()
        records = self.read_back(tmp_path)
        sink.close()
        if records is None:
            pytest.skip("this sink cannot be read back")
        assert len(records) == len(events)


# --------------------------------------------------------------------------------------------
# Reward terms


class RewardTermConformance:
    """Checks for a reward term: set ``spec``."""

    spec: ClassVar[RewardTermSpec]

    def contexts(self) -> list[RewardContext]:
        reports = sample_reports(2, epochs=6, seed=1)
        decisions = [Decision.wait("wait"), Decision(op=Op.GERMINATE, slot=0, blueprint="cnn:conv_light",
                                                     reason="test"), Decision(op=Op.CULL, slot=1, reason="test")]
        out = []
        for i, report in enumerate(reports):
            out.append(RewardContext(
                report=report, previous=reports[i - 1] if i else None, decision=decisions[i % 3],
                decision_applied=bool(i % 2), rollbacks=i % 2, terminal=i == len(reports) - 1,
                start_accuracy=reports[0].val_accuracy,
                anomalies=[("slot0", "nan_inf")] if i == 3 else [],
            ))
        return out

    def test_returns_finite_floats(self) -> None:
        for ctx in self.contexts():
            value = self.spec.compute(ctx)
            assert isinstance(value, int | float) and math.isfinite(value), f"{self.spec.name}: {value!r}"

    def test_is_pure(self) -> None:
        for ctx in self.contexts():
            before = copy.deepcopy(ctx)
            assert self.spec.compute(ctx) == self.spec.compute(ctx)
            assert ctx == before, f"{self.spec.name} mutated its context"

    def test_belongs_to_a_preset(self) -> None:
        assert self.spec.presets, f"{self.spec.name} is in no preset, so no run will use it"
        assert all(math.isfinite(w) for w in self.spec.presets.values())
