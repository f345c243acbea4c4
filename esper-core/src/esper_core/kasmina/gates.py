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


def _bounds(value: float, se: float | None, z: float) -> tuple[float, float]:
    """``value ∓ z·se``; an unknown standard error counts as zero (the point estimate)."""
    half = z * (se or 0.0)
    return value - half, value + half


def g2_gradient_readiness(context: GateContext) -> GateResult:
    """G2 (→ BLENDING): enough TRAINING epochs, a seed gain whose lower confidence bound reaches
    the threshold, and a gradient ratio at its floor.

    The gain is the mean of paired per-example differences (seed switched in minus not) on the
    validation split; its lower bound ``gain − z·se`` must exceed ``g2_min_improvement`` (a
    seed that changes nothing, gain 0 ± 0, does not pass). A point
    estimate at the resolution of one image was a coin flip: at its first check the gain of the
    same blueprint was +0.20, +0.10, −1.75, −0.45, +0.35 points over five seeds.
    """
    gate, target = "g2_gradient_readiness", SeedStage.BLENDING
    th = context.thresholds
    st = context.slot.state
    ratio = st.gradient.value
    m: dict[str, float] = {"epochs_in_stage": st.epochs_in_stage, "min_epochs": th.g2_min_epochs,
                           "gradient_ratio": ratio, "min_gradient_ratio": th.g2_gradient_ratio,
                           "min_improvement": th.g2_min_improvement, "z": th.confidence_z}
    problems = []
    if st.epochs_in_stage < th.g2_min_epochs:
        problems.append(f"{st.epochs_in_stage} of {th.g2_min_epochs} TRAINING epochs done")
    lower = upper = None
    if st.seed_gain is None:
        problems.append("seed gain not measured yet (needs a counterfactual validation pass)")
    else:
        lower, upper = _bounds(st.seed_gain, st.seed_gain_se, th.confidence_z)
        m.update(seed_gain=st.seed_gain, seed_gain_lower=lower, seed_gain_upper=upper)
        if st.seed_gain_se is not None:
            m["seed_gain_se"] = st.seed_gain_se
        if th.g2_test == "better" and lower <= th.g2_min_improvement:
            problems.append(f"seed gain {st.seed_gain:+.2f} ± {_se(st.seed_gain_se)}: lower bound "
                            f"{lower:+.2f} ≤ {th.g2_min_improvement:+.2f} points")
        elif th.g2_test == "not_worse" and upper < th.g2_min_improvement:
            problems.append(f"seed gain {st.seed_gain:+.2f} ± {_se(st.seed_gain_se)}: measurably "
                            f"harmful (upper bound {upper:+.2f} < {th.g2_min_improvement:+.2f} points)")
    if ratio < th.g2_gradient_ratio:
        problems.append(f"gradient ratio {ratio:.4f} < {th.g2_gradient_ratio:.4f}")
    if problems:
        return _result(gate, target, False, "; ".join(problems), **m)
    bound = f"lower bound {lower:+.2f}" if th.g2_test == "better" else f"upper bound {upper:+.2f}"
    return _result(gate, target, True,
                   f"ready: gain {st.seed_gain:+.2f} ± {_se(st.seed_gain_se)} points ({bound}), "
                   f"gradient ratio {ratio:.4f}", **m)


def _se(se: float | None) -> str:
    return "?" if se is None else f"{se:.2f}"


def g3_blending_complete(context: GateContext) -> GateResult:
    """G3 (→ SHADOWING): α reached ``g3_min_alpha`` after at least ``g3_min_epochs`` blending,
    and blending did not make the model measurably worse: the upper confidence bound of the
    seed's contribution is ≥ 0."""
    gate, target = "g3_blending_complete", SeedStage.SHADOWING
    th = context.thresholds
    st = context.slot.state
    alpha = context.slot.alpha
    epochs = st.epochs_in_stage
    m = {"alpha": alpha, "min_alpha": th.g3_min_alpha, "epochs_in_stage": epochs,
         "min_epochs": th.g3_min_epochs, "z": th.confidence_z}
    problems = []
    if alpha < th.g3_min_alpha:
        problems.append(f"alpha {alpha:.3f} < {th.g3_min_alpha:.3f}")
    if epochs < th.g3_min_epochs:
        problems.append(f"{epochs} of {th.g3_min_epochs} blending epochs done")
    if st.contribution is not None:
        _, upper = _bounds(st.contribution, st.contribution_se, th.confidence_z)
        m.update(contribution=st.contribution, contribution_upper=upper)
        if upper < 0:
            problems.append(f"contribution {st.contribution:+.2f} ± {_se(st.contribution_se)}: "
                            f"measurably harmful (upper bound {upper:+.2f} < 0)")
    if problems:
        return _result(gate, target, False, "; ".join(problems), **m)
    return _result(gate, target, True, f"blended: alpha {alpha:.3f} after {epochs} epochs", **m)


def g4_stability(context: GateContext) -> GateResult:
    """G4 (→ PROBATIONARY): ``g4_window`` SHADOWING epochs, in none of which the contribution
    was measurably negative (upper confidence bound < 0), parameters finite."""
    gate, target = "g4_stability", SeedStage.PROBATIONARY
    th = context.thresholds
    st = context.slot.state
    window = [c for _, stage, c in st.contributions if stage is SeedStage.SHADOWING][-th.g4_window:]
    finite = params_finite(context.slot.seed)
    m: dict[str, float] = {"epochs_in_stage": st.epochs_in_stage, "window": th.g4_window,
                           "measurements_in_window": len(window), "finite": float(finite),
                           "z": th.confidence_z}
    # The window's standard errors are alike (same split, same seed); the latest stands for all.
    half = th.confidence_z * (st.contribution_se or 0.0)
    if window:
        m["min_contribution"] = min(window)
        m["min_contribution_upper"] = min(window) + half
    problems = []
    if st.epochs_in_stage < th.g4_window:
        problems.append(f"{st.epochs_in_stage} of {th.g4_window} SHADOWING epochs done")
    if not window:
        problems.append("no contribution measured while SHADOWING")
    elif min(window) + half < 0:
        problems.append(f"contribution {min(window):+.2f} ± {_se(st.contribution_se)} in the window "
                        "is measurably negative")
    if not finite:
        problems.append("seed parameters are not finite")
    if problems:
        return _result(gate, target, False, "; ".join(problems), **m)
    return _result(gate, target, True,
                   f"stable: contribution ≥ {min(window):+.2f} points over {len(window)} epochs",
                   **m)


def g5_contribution(context: GateContext) -> GateResult:
    """G5 (→ FOSSILIZED): the lower confidence bound of the latest counterfactual contribution
    (``contribution − z·se``) exceeds ``g5_min_contribution``, parameters finite."""
    gate, target = "g5_contribution", SeedStage.FOSSILIZED
    th = context.thresholds
    st = context.slot.state
    contribution = st.contribution
    finite = params_finite(context.slot.seed)
    m: dict[str, float] = {"min_contribution": th.g5_min_contribution, "finite": float(finite),
                           "z": th.confidence_z}
    problems = []
    lower = None
    if contribution is None:
        problems.append("no counterfactual contribution measured")
    else:
        lower, _ = _bounds(contribution, st.contribution_se, th.confidence_z)
        m.update(contribution=contribution, contribution_lower=lower)
        if st.contribution_se is not None:
            m["contribution_se"] = st.contribution_se
        if lower <= th.g5_min_contribution:
            problems.append(f"contribution {contribution:+.2f} ± {_se(st.contribution_se)}: lower "
                            f"bound {lower:+.2f} ≤ {th.g5_min_contribution:+.2f} points")
    if not finite:
        problems.append("seed parameters are not finite")
    if problems:
        return _result(gate, target, False, "; ".join(problems), **m)
    return _result(gate, target, True,
                   f"contribution {contribution:+.2f} ± {_se(st.contribution_se)} points (lower "
                   f"bound {lower:+.2f})", **m)


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
