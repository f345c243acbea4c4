"""The built-in lifecycle gates G0–G5 and the suite that combines them (DESIGN §4).

A gate guards entry into one stage. It receives a :class:`GateContext` and returns a
:class:`~esper_core.contracts.GateResult` carrying every value it measured and a human reason,
whether it passes or not; the model emits each result as a ``GateEvaluated`` event. Gates are
looked up through the plugin catalog (``esper_register_gates``), so a plugin can add checks or
replace the defaults for a topology; :class:`GateSuite` applies those rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from attrs import field, frozen
from torch import nn

from esper_core.contracts.settings import GateThresholds
from esper_core.contracts.specs import BlueprintSpec, GateResult, GateSpec
from esper_core.contracts.stages import SeedStage
from esper_core.errors import PluginError
from esper_core.plugins.blame import blame, module_of

if TYPE_CHECKING:  # pragma: no cover
    from esper_core.kasmina.slot import SeedSlot

#: Probe batches are drawn from a fixed generator so G1 never disturbs the global RNG stream.
PROBE_SEED = 0
PROBE_BATCH = 2


@frozen(kw_only=True)
class GateContext:
    """What a gate may look at. ``model`` is the :class:`MorphogeneticModel`."""

    model: Any = field(eq=False)
    slot: SeedSlot = field(eq=False)
    thresholds: GateThresholds
    blueprint: BlueprintSpec | None = None
    param_budget: int | None = None
    topology: str = ""
    epoch: int = 0


def params_finite(module: nn.Module | None) -> bool:
    """Whether every parameter of ``module`` is finite (one fused reduction, one sync)."""
    if module is None:
        return True
    params = [p.detach() for p in module.parameters()]
    if not params:
        return True
    norms = torch._foreach_norm(params)
    return bool(torch.isfinite(torch.stack(norms)).all())


def _result(gate: str, target: SeedStage, passed: bool, reason: str, **m: float) -> GateResult:
    return GateResult(gate=gate, target=target, passed=passed, reason=reason,
                      measurements={k: float(v) for k, v in m.items()})


def g0_blueprint_fits(context: GateContext) -> GateResult:
    """G0 (→ GERMINATED): a blueprint is given, matches the topology and fits the budget."""
    gate, target = "g0_blueprint_fits", SeedStage.GERMINATED
    bp = context.blueprint
    if bp is None:
        return _result(gate, target, False, "no blueprint given")
    width = context.slot.point.width
    with blame("blueprint", bp.key, module_of(bp.param_estimate), "param_estimate"):
        estimate = int(bp.param_estimate(width))
    counts = context.model.param_counts()
    used = sum(counts.seeds.values()) + counts.fossilized
    m: dict[str, float] = {"param_estimate": estimate, "seed_params_used": used, "width": width}
    if bp.topology != context.topology:
        return _result(gate, target, False,
                       f"blueprint {bp.key} is for topology {bp.topology!r}, "
                       f"not {context.topology!r}",
                       topology_match=0, **m)
    if context.param_budget is not None:
        left = context.param_budget - used
        m.update(param_budget=context.param_budget, budget_left=left)
        if estimate > left:
            return _result(gate, target, False,
                           f"{bp.key} needs {estimate} parameters, only {left} of the "
                           f"{context.param_budget} budget left", topology_match=1, **m)
    return _result(gate, target, True, f"{bp.key} fits ({estimate} parameters)",
                   topology_match=1, **m)


def g1_shape_and_finite(context: GateContext) -> GateResult:
    """G1 (→ TRAINING): on a random probe batch the seed keeps the shape and stays finite.

    The probe has the shape of the last activation the slot saw in forward, with batch 2. The
    seed runs in eval mode under ``no_grad`` so the probe leaves no trace (e.g. in BatchNorm
    running statistics).
    """
    gate, target = "g1_shape_and_finite", SeedStage.TRAINING
    slot = context.slot
    seed = slot.seed
    if seed is None:
        return _result(gate, target, False, f"slot {slot.name} holds no seed")
    shape = slot.state.last_shape
    if shape is None:
        return _result(gate, target, False,
                       f"slot {slot.name} has not seen an activation yet; run a forward pass first")
    ref = next(seed.parameters(), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    generator = torch.Generator().manual_seed(PROBE_SEED)
    probe = torch.randn((PROBE_BATCH, *shape[1:]), generator=generator).to(device, dtype)
    was_training = seed.training
    seed.eval()
    try:
        with torch.no_grad():
            out = seed(probe)
    except (RuntimeError, ValueError, TypeError) as exc:
        return _result(gate, target, False,
                       f"seed failed on a probe of shape {tuple(probe.shape)}: {exc}")
    finally:
        seed.train(was_training)
    if not isinstance(out, torch.Tensor) or out.shape != probe.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return _result(gate, target, False,
                       f"seed output {got} does not match its input {tuple(probe.shape)}",
                       shape_match=0)
    finite = bool(torch.isfinite(out).all())
    if not finite:
        return _result(gate, target, False, "seed output on the probe batch is not finite",
                       shape_match=1, finite=0)
    return _result(gate, target, True, f"shape {tuple(probe.shape)} kept, output finite",
                   shape_match=1, finite=1)


def g2_gradient_readiness(context: GateContext) -> GateResult:
    """G2 (→ BLENDING): enough TRAINING epochs, seed gain and gradient ratio at thresholds."""
    gate, target = "g2_gradient_readiness", SeedStage.BLENDING
    th = context.thresholds
    st = context.slot.state
    ratio = st.gradient.value
    m: dict[str, float] = {"epochs_in_stage": st.epochs_in_stage, "min_epochs": th.g2_min_epochs,
                           "gradient_ratio": ratio, "min_gradient_ratio": th.g2_gradient_ratio,
                           "min_improvement": th.g2_min_improvement}
    if st.seed_gain is not None:
        m["seed_gain"] = st.seed_gain
    problems = []
    if st.epochs_in_stage < th.g2_min_epochs:
        problems.append(f"{st.epochs_in_stage} of {th.g2_min_epochs} TRAINING epochs done")
    if st.seed_gain is None:
        problems.append("seed gain not measured yet (needs a counterfactual validation pass)")
    elif st.seed_gain < th.g2_min_improvement:
        problems.append(f"seed gain {st.seed_gain:.3f} < {th.g2_min_improvement:.3f} points")
    if ratio < th.g2_gradient_ratio:
        problems.append(f"gradient ratio {ratio:.4f} < {th.g2_gradient_ratio:.4f}")
    if problems:
        return _result(gate, target, False, "; ".join(problems), **m)
    return _result(gate, target, True,
                   f"ready: gain {st.seed_gain:.3f} points, gradient ratio {ratio:.4f}", **m)


def g3_blending_complete(context: GateContext) -> GateResult:
    """G3 (→ SHADOWING): α reached ``g3_min_alpha`` after at least ``g3_min_epochs`` blending."""
    gate, target = "g3_blending_complete", SeedStage.SHADOWING
    th = context.thresholds
    alpha = context.slot.alpha
    epochs = context.slot.state.epochs_in_stage
    m = {"alpha": alpha, "min_alpha": th.g3_min_alpha, "epochs_in_stage": epochs,
         "min_epochs": th.g3_min_epochs}
    problems = []
    if alpha < th.g3_min_alpha:
        problems.append(f"alpha {alpha:.3f} < {th.g3_min_alpha:.3f}")
    if epochs < th.g3_min_epochs:
        problems.append(f"{epochs} of {th.g3_min_epochs} blending epochs done")
    if problems:
        return _result(gate, target, False, "; ".join(problems), **m)
    return _result(gate, target, True, f"blended: alpha {alpha:.3f} after {epochs} epochs", **m)


def g4_stability(context: GateContext) -> GateResult:
    """G4 (→ PROBATIONARY): ``g4_window`` SHADOWING epochs, no negative contribution, finite."""
    gate, target = "g4_stability", SeedStage.PROBATIONARY
    th = context.thresholds
    st = context.slot.state
    window = [c for _, stage, c in st.contributions if stage is SeedStage.SHADOWING][-th.g4_window:]
    finite = params_finite(context.slot.seed)
    m: dict[str, float] = {"epochs_in_stage": st.epochs_in_stage, "window": th.g4_window,
                           "measurements_in_window": len(window), "finite": float(finite)}
    if window:
        m["min_contribution"] = min(window)
    problems = []
    if st.epochs_in_stage < th.g4_window:
        problems.append(f"{st.epochs_in_stage} of {th.g4_window} SHADOWING epochs done")
    if not window:
        problems.append("no contribution measured while SHADOWING")
    elif min(window) < 0:
        problems.append(f"negative contribution {min(window):.3f} points in the window")
    if not finite:
        problems.append("seed parameters are not finite")
    if problems:
        return _result(gate, target, False, "; ".join(problems), **m)
    return _result(gate, target, True,
                   f"stable: contribution ≥ {min(window):.3f} points over {len(window)} epochs",
                   **m)


def g5_contribution(context: GateContext) -> GateResult:
    """G5 (→ FOSSILIZED): latest counterfactual contribution ≥ threshold, parameters finite."""
    gate, target = "g5_contribution", SeedStage.FOSSILIZED
    th = context.thresholds
    contribution = context.slot.state.contribution
    finite = params_finite(context.slot.seed)
    m: dict[str, float] = {"min_contribution": th.g5_min_contribution, "finite": float(finite)}
    problems = []
    if contribution is None:
        problems.append("no counterfactual contribution measured")
    else:
        m["contribution"] = contribution
        if contribution < th.g5_min_contribution:
            problems.append(
                f"contribution {contribution:.3f} < {th.g5_min_contribution:.3f} points")
    if not finite:
        problems.append("seed parameters are not finite")
    if problems:
        return _result(gate, target, False, "; ".join(problems), **m)
    return _result(gate, target, True, f"contribution {contribution:.3f} points", **m)


def _matches(spec: GateSpec, topology: str) -> bool:
    return spec.topology in ("*", topology)


@frozen
class GateSuite:
    """The gates guarding each target stage for one topology."""

    topology: str
    gates: Mapping[SeedStage, tuple[GateSpec, ...]]

    @classmethod
    def from_specs(cls, specs: Iterable[GateSpec], topology: str) -> GateSuite:
        """Built-in gates per target unless a matching ``replaces_default`` gate exists, plus
        every additive (non-built-in) gate whose topology is ``"*"`` or ``topology``."""
        specs = [s for s in specs if _matches(s, topology)]
        chosen: dict[SeedStage, tuple[GateSpec, ...]] = {}
        for target in SeedStage:
            here = [s for s in specs if s.target is target]
            replacing = [s for s in here if s.replaces_default]
            base = replacing or [s for s in here if s.builtin]
            extra = [s for s in here if not s.builtin and not s.replaces_default]
            if base or extra:
                chosen[target] = tuple(base + extra)
        return cls(topology, chosen)

    def names(self, target: SeedStage) -> tuple[str, ...]:
        return tuple(s.name for s in self.gates.get(target, ()))

    def evaluate(self, target: SeedStage, context: GateContext) -> GateResult:
        """Run every gate for ``target``; all must pass (:meth:`GateResult.combine`)."""
        results = []
        for spec in self.gates.get(target, ()):
            result = spec.check(context)
            if not isinstance(result, GateResult):
                raise PluginError(
                    f"gate {spec.name!r} returned {type(result).__name__}, not GateResult")
            results.append(result)
        return GateResult.combine(target, results)
