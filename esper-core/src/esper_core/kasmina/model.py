"""MorphogeneticModel: a segmented host with seed slots and the seed lifecycle (DESIGN §4).

The model owns the slots and every stage change. Each transition is checked against the
contract's transition table and emitted as a ``SeedLifecycle`` event; each gate evaluation is
emitted as a ``GateEvaluated`` event (``run_id``/``episode`` are left for the engine to fill).
In a data-parallel run every gate result and lifecycle command is agreed across ranks
(:mod:`esper_core.kasmina.distributed`), so all ranks keep the same architecture.

Fossilized seeds stay in place as ordinary submodules (``slots.<name>.seed``), so the state dict
holds them and an exporter can fold them into the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence

import structlog
import torch
from attrs import field, frozen
from torch import Tensor, nn

from esper_core.contracts.events import GateEvaluated, SeedLifecycle, TelemetryEvent
from esper_core.contracts.protocols import AlphaSchedule, SegmentedHost
from esper_core.contracts.reports import SlotReport
from esper_core.contracts.seeds import SeedView
from esper_core.contracts.settings import GateThresholds, LifecycleSettings
from esper_core.contracts.specs import BlueprintSpec, GateResult
from esper_core.contracts.stages import (
    BLENDED_STAGES,
    LIVE_STAGES,
    NEXT_STAGE,
    SeedStage,
    check_transition,
)
from esper_core.errors import ConfigError, EsperError, PluginError
from esper_core.kasmina.distributed import agree, agree_all, agree_min_many
from esper_core.kasmina.gates import GateContext, GateSuite
from esper_core.kasmina.slot import SeedSlot, SlotState
from esper_core.plugins.blame import blame, module_of

logger = structlog.get_logger(__name__)

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")

Transition = tuple[str, SeedStage, SeedStage]

_AUTO_ADVANCE = (SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.SHADOWING)
_COMMANDS = {"germinate": 1, "advance": 2, "fossilize": 3, "cull": 4}


@frozen(kw_only=True)
class ParamCounts:
    """Parameter counts: the host's own, each live seed's, and all fossilized seeds'."""

    host: int
    seeds: Mapping[str, int] = field(factory=dict)
    fossilized: int = 0

    @property
    def total(self) -> int:
        return self.host + sum(self.seeds.values()) + self.fossilized


def _numel(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


class MorphogeneticModel(nn.Module):
    """A :class:`SegmentedHost` with a :class:`SeedSlot` at each chosen injection point."""

    def __init__(
        self,
        host: nn.Module,
        *,
        slots: Sequence[str] | None,
        topology: str,
        lifecycle: LifecycleSettings,
        thresholds: GateThresholds,
        gates: GateSuite,
        alpha_schedules: Mapping[str, Callable[..., AlphaSchedule]],
        param_budget: int | None = None,
        emit: Callable[[TelemetryEvent], None] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(host, SegmentedHost):
            raise ConfigError(
                f"{type(host).__name__} is not a segmented host: it needs `injection_points` "
                "and `segments` (see esper_core.contracts.SegmentedHost)"
            )
        points = tuple(host.injection_points)
        if len(host.segments) != len(points) + 1:
            raise ConfigError(
                f"{type(host).__name__} has {len(points)} injection points but "
                f"{len(host.segments)} segments; it needs {len(points) + 1}"
            )
        known = [p.name for p in points]
        chosen = list(known if slots is None else slots)
        unknown = [s for s in chosen if s not in known]
        if unknown:
            raise ConfigError(
                f"unknown slot(s) {', '.join(map(repr, unknown))}; "
                f"{type(host).__name__} has injection points: {', '.join(known)}"
            )
        if len(set(chosen)) != len(chosen):
            raise ConfigError(f"slot names repeat: {', '.join(chosen)}")
        if lifecycle.alpha_schedule not in alpha_schedules:
            raise ConfigError(
                f"unknown alpha schedule {lifecycle.alpha_schedule!r}; "
                f"known: {', '.join(sorted(alpha_schedules)) or 'none'}"
            )
        if param_budget is not None and param_budget < 0:
            raise ConfigError(f"param_budget must be ≥ 0 or None, got {param_budget!r}")

        self.host = host
        self.topology = topology
        self.lifecycle = lifecycle
        self.thresholds = thresholds
        self.gates = gates
        self.param_budget = param_budget
        self.schedule: AlphaSchedule = alpha_schedules[lifecycle.alpha_schedule](
            total_epochs=lifecycle.blending_epochs, temperature=lifecycle.alpha_temperature
        )
        self._emit = emit
        # Slots in the user's order (their index is the controller's slot index) ...
        ordered = sorted(chosen, key=known.index)
        seed_slots = {
            name: SeedSlot(
                name,
                points[known.index(name)],
                index=i,
                detach_host_in_blending=lifecycle.detach_host_in_blending,
                straight_through=lifecycle.training_objective == "straight_through",
            )
            for i, name in enumerate(ordered)
        }
        self.slots = nn.ModuleDict(seed_slots)
        # ... and by injection point for the forward. Plain tuples (not registered twice);
        # indexing a tuple is much cheaper than an nn.ModuleList in the hot loop.
        by_point: list[SeedSlot | None] = [None] * len(points)
        for name, slot in seed_slots.items():
            by_point[known.index(name)] = slot
        self._by_point: tuple[SeedSlot | None, ...] = tuple(by_point)
        self._segments: tuple[nn.Module, ...] = tuple(host.segments)

    # ------------------------------------------------------------------ forward
    @property
    def n_points(self) -> int:
        return len(self._by_point)

    def run_from(self, h: Tensor, start: int, cache: list[Tensor] | None = None) -> Tensor:
        """Continue the forward from the activation ``h`` entering injection point ``start``.

        With ``cache`` the activation entering every point from ``start`` on (before its slot)
        is appended, which lets the counterfactual pass re-run only a suffix.
        """
        segments = self._segments
        by_point = self._by_point
        for i in range(start, len(by_point)):
            if cache is not None:
                cache.append(h)
            slot = by_point[i]
            if slot is not None:
                h = slot(h)
            h = segments[i + 1](h)
        return h

    def suffix_modules(self, start: int) -> list[nn.Module]:
        """The modules downstream of the slot at injection point ``start``: every later segment
        and slot (what a counterfactual or feedback pass from that slot runs through)."""
        modules: list[nn.Module] = []
        for i in range(start, len(self._by_point)):
            if i > start and self._by_point[i] is not None:
                modules.append(self._by_point[i])  # type: ignore[arg-type]
            modules.append(self._segments[i + 1])
        return modules

    def downstream_norms(self, slot: SeedSlot) -> list[nn.Module]:
        """BatchNorm layers (tracking running statistics) downstream of ``slot``."""
        return [m for module in self.suffix_modules(self.point_index(slot)) for m in module.modules()
                if isinstance(m, _BATCH_NORMS) and m.track_running_stats]

    def attach_seed_path_stats(self, slot: SeedSlot) -> None:
        """Give a feedback-trained TRAINING seed its own copy of the downstream BatchNorm
        running statistics (a no-op otherwise, and when there is no downstream BatchNorm).

        Why: the seed learns on a forward with itself switched in, whose activations downstream
        differ from the host's. Measured with the host's statistics (restored after every
        feedback pass, as they must be; ``benchmarks/growth_training_objective.py --seeds 0
        --epochs 12 --germinate-at 4`` on the then 8/16/32 ``shapes`` host), a ``conv_light``
        seed in ``block2``, whose downstream block3 normalises with BatchNorm, showed a gain of
        −0.75 to −3.95 points over its last seven TRAINING epochs, while a ``depthwise`` seed in
        ``block3`` (no BatchNorm downstream) gained +1.25 to +5.30; with the seed path's own
        statistics the ``block2`` seed's gain moved to −0.60 … +1.20. The seed-on path had been
        normalised with the statistics of another distribution."""
        slot.seed_path_stats = None
        if slot.stage is not SeedStage.TRAINING or slot.straight_through or slot.seed is None:
            return
        norms = self.downstream_norms(slot)
        if not norms:
            return
        stats = nn.Module()
        for i, m in enumerate(norms):
            for name in _NORM_BUFFERS:
                buffer = getattr(m, name)
                if buffer is not None:
                    stats.register_buffer(f"n{i}_{name}", buffer.detach().clone())
        slot.seed_path_stats = stats

    @contextlib.contextmanager
    def seed_path_statistics(self, slot: SeedSlot) -> Iterator[None]:
        """Inside the block the BatchNorm layers downstream of ``slot`` use (and, in training
        mode, update) the seed path's own running statistics; the host's are swapped back out
        untouched afterwards. Swapping the buffer objects copies nothing and leaves the host's
        tensors as its autograd graph saved them."""
        stats = slot.seed_path_stats
        if stats is None:
            yield
            return
        norms = self.downstream_norms(slot)

        def swap() -> None:
            for i, m in enumerate(norms):
                for name in _NORM_BUFFERS:
                    key = f"n{i}_{name}"
                    if key in stats._buffers:
                        m._buffers[name], stats._buffers[key] = stats._buffers[key], m._buffers[name]

        swap()
        try:
            yield
        finally:
            swap()

    def stem(self, x: Tensor) -> Tensor:
        """The first segment: the activation entering injection point 0."""
        return self._segments[0](x)

    def forward(self, x: Tensor, cache: list[Tensor] | None = None) -> Tensor:
        """The model's forward; with ``cache`` the activation entering every injection point
        is appended to it (see :meth:`run_from`)."""
        return self.run_from(self._segments[0](x), 0, cache)

    # ------------------------------------------------------------------ access
    @property
    def slot_names(self) -> tuple[str, ...]:
        return tuple(self.slots.keys())

    def slot(self, name: str) -> SeedSlot:
        try:
            return self.slots[name]  # type: ignore[return-value]
        except KeyError:
            raise ConfigError(
                f"unknown slot {name!r}; slots: {', '.join(self.slot_names) or 'none'}"
            ) from None

    def all_slots(self) -> tuple[SeedSlot, ...]:
        return tuple(self.slots.values())  # type: ignore[arg-type]

    def point_index(self, slot: SeedSlot) -> int:
        return self._by_point.index(slot)

    def emit(self, event: TelemetryEvent) -> None:
        if self._emit is not None:
            self._emit(event)

    def device_and_dtype(self) -> tuple[torch.device, torch.dtype]:
        for p in self.host.parameters():
            if p.is_floating_point():
                return p.device, p.dtype
        return torch.device("cpu"), torch.float32

    def host_parameters(self) -> list[nn.Parameter]:
        """The host's parameters plus those of fossilized seeds (they are part of the host)."""
        params = list(self.host.parameters())
        for slot in self.all_slots():
            if slot.stage is SeedStage.FOSSILIZED and slot.seed is not None:
                params.extend(slot.seed.parameters())
        return params

    def seed_parameters(self, slot: str) -> list[nn.Parameter]:
        """The parameters of the live seed in ``slot`` (empty when there is none)."""
        s = self.slot(slot)
        if s.stage not in LIVE_STAGES or s.seed is None:
            return []
        return list(s.seed.parameters())

    def seed_views(self) -> tuple[SeedView, ...]:
        """A read-only view of every slot, in slot order, for observers (``ObservedModel``)."""
        return tuple(SeedView(slot=s.name, stage=s.stage,
                              blueprint=s.blueprint.key if s.blueprint is not None else None,
                              alpha=self.effective_alpha(s), last_grad_norm=s.state.last_grad_norm,
                              parameters=self.seed_parameters(s.name))
                     for s in self.all_slots())

    def param_counts(self) -> ParamCounts:
        seeds = {s.name: _numel(s.seed) for s in self.all_slots() if s.stage in LIVE_STAGES}
        fossil = sum(_numel(s.seed) for s in self.all_slots() if s.stage is SeedStage.FOSSILIZED)
        return ParamCounts(host=_numel(self.host), seeds=seeds, fossilized=fossil)

    @contextlib.contextmanager
    def force_alpha(self, slot: str, alpha: float) -> Iterator[None]:
        """Run the slot at ``alpha`` inside the block (0 = seed removed), e.g. counterfactuals."""
        s = self.slot(slot)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        previous = s.forced_alpha
        s.forced_alpha = float(alpha)
        try:
            yield
        finally:
            s.forced_alpha = previous

    def slot_reports(self) -> tuple[SlotReport, ...]:
        reports = []
        for slot in self.all_slots():
            st = slot.state
            reports.append(
                SlotReport(
                    slot=slot.name,
                    index=slot.index,
                    width=slot.point.width,
                    stage=slot.stage,
                    blueprint=slot.blueprint.key if slot.blueprint is not None else None,
                    epochs_in_stage=st.epochs_in_stage,
                    alpha=self.effective_alpha(slot),
                    contribution=st.contribution,
                    seed_gain=st.seed_gain,
                    contribution_se=st.contribution_se,
                    seed_gain_se=st.seed_gain_se,
                    gradient_ratio=st.gradient.value,
                    seed_params=_numel(slot.seed),
                    germinated_epoch=st.germinated_epoch,
                    accuracy_at_germination=st.accuracy_at_germination,
                )
            )
        return tuple(reports)

    @staticmethod
    def effective_alpha(slot: SeedSlot) -> float:
        """The α the forward uses: 1 when fossilized, the schedule's α when blended, else 0."""
        if slot.stage is SeedStage.FOSSILIZED:
            return 1.0
        return slot.alpha if slot.stage in BLENDED_STAGES else 0.0

    # ------------------------------------------------------------------ lifecycle
    def _context(self, slot: SeedSlot, epoch: int, blueprint: BlueprintSpec | None) -> GateContext:
        return GateContext(model=self, slot=slot, thresholds=self.thresholds, blueprint=blueprint,
                           param_budget=self.param_budget, topology=self.topology, epoch=epoch)

    def _agree_command(self, command: str, slot: SeedSlot) -> None:
        # Every rank must issue the same command on the same slot; MIN of (x, −x) gives min and
        # −max in one collective, and they differ exactly when the ranks disagree.
        code = _COMMANDS[command]
        got = agree_min_many([code, -code, slot.index, -slot.index])
        if got[0] != -got[1] or got[2] != -got[3]:
            raise EsperError(f"ranks disagree on lifecycle command {command} for slot {slot.name}")

    def _finish_gate(self, slot: SeedSlot, result: GateResult, epoch: int) -> GateResult:
        passed = agree(result.passed)
        if passed != result.passed:
            result = GateResult(gate=result.gate, target=result.target, passed=False,
                                reason=f"{result.reason}; refused on another rank",
                                measurements=result.measurements)
        self.emit(GateEvaluated(epoch=epoch, slot=slot.name, gate=result.gate,
                                target=result.target.name, passed=result.passed,
                                reason=result.reason, measurements=dict(result.measurements)))
        logger.debug("gate evaluated", slot=slot.name, gate=result.gate,
                     target=result.target.name, passed=result.passed, reason=result.reason)
        return result

    def _refusal(self, slot: SeedSlot, target: SeedStage, reason: str, epoch: int) -> GateResult:
        result = GateResult(gate="lifecycle", target=target, passed=False, reason=reason)
        return self._finish_gate(slot, result, epoch)

    def _transition(self, slot: SeedSlot, dst: SeedStage, *, epoch: int, reason: str) -> Transition:
        src = slot.stage
        check_transition(src, dst)
        slot.stage = dst
        self.attach_seed_path_stats(slot)
        st = slot.state
        st.stage_epoch = epoch
        st.epochs_in_stage = 0
        st.last_counted_epoch = epoch
        if dst is SeedStage.BLENDING:
            # α is the weight for the epoch about to be trained: blending epoch k (1-based)
            # runs at schedule(k), so no blending epoch is wasted at α = 0.
            st.blend_epochs = 0
            slot.alpha = self.schedule(1)
        elif dst is SeedStage.FOSSILIZED:
            slot.alpha = 1.0
            st.last_seed_output = None
        elif dst is SeedStage.CULLED:
            slot.seed = None
            slot.alpha = 0.0
            slot.forced_alpha = None
            st.last_seed_output = None
        elif dst is SeedStage.DORMANT:
            slot.blueprint = None
            slot.state = SlotState(stage_epoch=epoch, last_counted_epoch=epoch,
                                   last_shape=st.last_shape)
        key = slot.blueprint.key if slot.blueprint is not None else None
        self.emit(SeedLifecycle(epoch=epoch, slot=slot.name, blueprint=key,
                                from_stage=src.name, to_stage=dst.name, reason=reason))
        logger.info("seed transition", slot=slot.name, blueprint=key, from_stage=src.name,
                    to_stage=dst.name, epoch=epoch, reason=reason)
        return (slot.name, src, dst)

    def _try_gate(self, slot: SeedSlot, target: SeedStage, epoch: int) -> GateResult:
        result = self.gates.evaluate(target, self._context(slot, epoch, slot.blueprint))
        result = self._finish_gate(slot, result, epoch)
        if result.passed:
            self._transition(slot, target, epoch=epoch, reason=result.reason)
        return result

    def germinate(self, slot: str, blueprint: BlueprintSpec, *, epoch: int,
                  accuracy: float | None = None) -> GateResult:
        """Plant ``blueprint`` in a DORMANT slot if G0 passes; a refusal changes nothing.

        ``accuracy`` is the validation accuracy now, kept for "improvement since germination".
        """
        s = self.slot(slot)
        self._agree_command("germinate", s)
        if s.stage is not SeedStage.DORMANT:
            return self._refusal(s, SeedStage.GERMINATED,
                                 f"slot {s.name} is {s.stage.name}, not DORMANT", epoch)
        result = self.gates.evaluate(SeedStage.GERMINATED, self._context(s, epoch, blueprint))
        module = None
        if result.passed:
            with blame("blueprint", blueprint.key, module_of(blueprint.factory), "its factory"):
                module = blueprint.factory(width=s.point.width)
            if not isinstance(module, nn.Module):
                raise PluginError(
                    f"blueprint {blueprint.key} built {type(module).__name__}, not an nn.Module")
            result = self._check_built_budget(result, blueprint, module)
        result = self._finish_gate(s, result, epoch)
        if not result.passed or module is None:
            return result
        device, dtype = self.device_and_dtype()
        s.seed = module.to(device=device, dtype=dtype)
        s.blueprint = blueprint
        self._transition(s, SeedStage.GERMINATED, epoch=epoch, reason=result.reason)
        s.state.germinated_epoch = epoch
        s.state.accuracy_at_germination = accuracy
        return result

    def _check_built_budget(self, result: GateResult, blueprint: BlueprintSpec,
                            module: nn.Module) -> GateResult:
        """G0 judged the blueprint's ``param_estimate``; the budget is a promise about the
        module actually built, so that is counted too (an estimate may be wrong or a lie)."""
        if self.param_budget is None:
            return result
        built = _numel(module)
        counts = self.param_counts()
        left = self.param_budget - sum(counts.seeds.values()) - counts.fossilized
        if built <= left:
            return result
        estimate = result.measurements.get("g0_blueprint_fits.param_estimate")
        said = f" (its param_estimate said {int(estimate)})" if estimate is not None else ""
        return GateResult(
            gate=result.gate, target=result.target, passed=False,
            reason=(f"{blueprint.key} built {built} parameters{said}, "
                    f"only {left} of the {self.param_budget} budget left"),
            measurements={**result.measurements, "g0_blueprint_fits.seed_params": float(built),
                          "g0_blueprint_fits.budget_left": float(left)})

    def advance(self, slot: str, *, epoch: int) -> GateResult:
        """Try the gate into the next stage; PROBATIONARY → FOSSILIZED is :meth:`fossilize`."""
        s = self.slot(slot)
        if s.stage is SeedStage.PROBATIONARY:
            return self.fossilize(slot, epoch=epoch)
        self._agree_command("advance", s)
        target = NEXT_STAGE.get(s.stage)
        if target is None:
            hint = "; germinate it first" if s.stage is SeedStage.DORMANT else ""
            reason = f"slot {s.name} is {s.stage.name}: nothing to advance{hint}"
            return self._refusal(s, SeedStage.UNKNOWN, reason, epoch)
        return self._try_gate(s, target, epoch)

    def fossilize(self, slot: str, *, epoch: int) -> GateResult:
        """G5: make a PROBATIONARY seed a permanent part of the host."""
        s = self.slot(slot)
        self._agree_command("fossilize", s)
        if s.stage is not SeedStage.PROBATIONARY:
            return self._refusal(s, SeedStage.FOSSILIZED,
                                 f"slot {s.name} is {s.stage.name}, not PROBATIONARY", epoch)
        return self._try_gate(s, SeedStage.FOSSILIZED, epoch)

    def preview_gates(self, *, epoch: int, advance: bool) -> list[GateResult | None]:
        """What the gates into each slot's next stage would decide now, changing nothing and
        reporting nothing: a PROBATIONARY slot's (→ FOSSILIZED) always, the earlier live
        stages' only when ``advance`` (a lifecycle that waits for ADVANCE decisions); None for
        every other slot. Agreed across ranks, as the gate is when the decision is applied.

        The action mask reads this, so a controller is offered FOSSILIZE (and ADVANCE) only
        when the lifecycle would accept it: the gates are the lifecycle's rules, not something a
        controller should spend its data learning to predict (measured: docs/learned_controllers.md,
        "Offering only what the gates accept").
        """
        previews: list[GateResult | None] = []
        for s in self.all_slots():
            target = NEXT_STAGE.get(s.stage) if advance or s.stage is SeedStage.PROBATIONARY else None
            if target is None or s.stage not in LIVE_STAGES:
                previews.append(None)
                continue
            previews.append(self.gates.evaluate(target, self._context(s, epoch, s.blueprint)))
        agreed = agree_all([p is not None and p.passed for p in previews])
        return [
            p if p is None or ok == p.passed
            else GateResult(gate=p.gate, target=p.target, passed=False,
                            reason=f"{p.reason}; refused on another rank", measurements=p.measurements)
            for p, ok in zip(previews, agreed, strict=True)
        ]

    def cull(self, slot: str, *, epoch: int, reason: str) -> None:
        """Remove a live seed: → CULLED, module dropped; raises InvalidTransitionError otherwise."""
        s = self.slot(slot)
        self._agree_command("cull", s)
        self._transition(s, SeedStage.CULLED, epoch=epoch, reason=reason)

    def step_lifecycle(self, *, epoch: int) -> list[Transition]:
        """Once per epoch, after validation: dwell counters, α, auto-advance, timeouts, cooldown."""
        lc = self.lifecycle
        transitions: list[Transition] = []
        for slot in self.all_slots():
            st = slot.state
            if epoch > st.last_counted_epoch:
                st.epochs_in_stage += 1
                st.last_counted_epoch = epoch
                if slot.stage in BLENDED_STAGES:
                    st.blend_epochs += 1
                    slot.alpha = self.schedule(st.blend_epochs + 1)
            stage = slot.stage
            if stage is SeedStage.PROBATIONARY and st.epochs_in_stage >= lc.probation_epochs:
                transitions.append(self._transition(
                    slot, SeedStage.CULLED, epoch=epoch,
                    reason=f"probation timeout: not fossilized after {st.epochs_in_stage} epochs"))
            elif (lc.auto_advance and stage in _AUTO_ADVANCE
                  and self._try_gate(slot, NEXT_STAGE[stage], epoch).passed):
                transitions.append((slot.name, stage, slot.stage))
            transitions.extend(self._cooldown(slot, epoch))
        return transitions

    def _cooldown(self, slot: SeedSlot, epoch: int) -> list[Transition]:
        # CULLED → EMBARGOED → RESETTING → DORMANT; a zero dwell passes straight through.
        lc = self.lifecycle
        out: list[Transition] = []
        while True:
            stage, dwell = slot.stage, slot.state.epochs_in_stage
            if stage is SeedStage.CULLED:
                out.append(self._transition(slot, SeedStage.EMBARGOED, epoch=epoch,
                                            reason="embargo"))
            elif stage is SeedStage.EMBARGOED and dwell >= lc.embargo_epochs:
                out.append(self._transition(slot, SeedStage.RESETTING, epoch=epoch,
                                            reason=f"embargo over after {dwell} epochs"))
            elif stage is SeedStage.RESETTING and dwell >= lc.resetting_epochs:
                out.append(self._transition(slot, SeedStage.DORMANT, epoch=epoch, reason="reset"))
            else:
                return out

    # ------------------------------------------------------------------ measurements
    def record_validation(self, *, contributions: Mapping[str, float],
                          seed_gains: Mapping[str, float], epoch: int,
                          contribution_ses: Mapping[str, float] | None = None,
                          seed_gain_ses: Mapping[str, float] | None = None) -> None:
        """Store a validation pass's counterfactual results and their standard errors in the
        slots (G2–G5 read them); a missing standard error is recorded as unknown (None)."""
        for name, value in contributions.items():
            s = self.slot(name)
            s.state.contribution = value
            s.state.contribution_se = (contribution_ses or {}).get(name)
            s.state.contributions.append((epoch, s.stage, value))
        for name, value in seed_gains.items():
            st = self.slot(name).state
            st.seed_gain = value
            st.seed_gain_se = (seed_gain_ses or {}).get(name)

    def sync_gradient_ratios(self) -> dict[str, float]:
        """Read every tracked gradient ratio out of the device (once per epoch)."""
        return {s.name: s.state.gradient.sync() for s in self.all_slots() if s.state.gradient.steps}
