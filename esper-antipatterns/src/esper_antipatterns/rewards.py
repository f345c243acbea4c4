"""Reward terms that price failure signatures (seed 000's "Reward Signal Design").

Each term reads ``RewardContext.anomalies`` — the ``(slot, signature)`` pairs detected during
the controller step — and returns ``penalty × occurrences`` of its signature; an identical
``(slot, signature)`` pair reported twice in one step counts once. All five are in the
``shaped`` preset with weight 1.0; a run's ``[rewards]`` table overrides a weight by term name
(e.g. ``antipattern_nan_inf = 0.5``) or switches a term off (``= 0``).
"""

from __future__ import annotations

from esper_antipatterns.signatures import PENALTIES, Signature
from esper_core.contracts.protocols import RewardContext
from esper_core.contracts.specs import RewardTermSpec

#: Preset → weight of every anti-pattern term.
PRESETS: dict[str, float] = {"shaped": 1.0}


def occurrences(ctx: RewardContext, signature: Signature | str) -> int:
    """How many distinct slots showed ``signature`` during the step (``None`` slot counts once)."""
    wanted = Signature(signature).value
    return len({slot for slot, sig in ctx.anomalies if sig == wanted})


def signature_penalty(ctx: RewardContext, signature: Signature | str) -> float:
    """Unweighted penalty of ``signature`` for one step: its penalty × its occurrences."""
    return PENALTIES[Signature(signature)] * occurrences(ctx, signature)


def nan_inf_penalty(ctx: RewardContext) -> float:
    """−100 per seed that produced NaN/Inf: catastrophic, immediate."""
    return signature_penalty(ctx, Signature.NAN_INF)


def gradient_collapse_penalty(ctx: RewardContext) -> float:
    """−10 per seed whose gradient norm fell below 1e-7."""
    return signature_penalty(ctx, Signature.GRADIENT_COLLAPSE)


def gradient_explosion_penalty(ctx: RewardContext) -> float:
    """−10 per seed whose gradient norm exceeded 1e4."""
    return signature_penalty(ctx, Signature.GRADIENT_EXPLOSION)


def plateau_penalty(ctx: RewardContext) -> float:
    """−5 per seed live through a validation plateau, every step it lasts (cumulative)."""
    return signature_penalty(ctx, Signature.PLATEAU)


def cost_without_benefit_penalty(ctx: RewardContext) -> float:
    """−1 per seed whose cost per accuracy point of contribution is too high."""
    return signature_penalty(ctx, Signature.COST_WITHOUT_BENEFIT)


def antipattern_reward_terms() -> list[RewardTermSpec]:
    """The five penalty terms, named ``antipattern_<signature>``."""
    computes = {
        Signature.NAN_INF: nan_inf_penalty,
        Signature.GRADIENT_COLLAPSE: gradient_collapse_penalty,
        Signature.GRADIENT_EXPLOSION: gradient_explosion_penalty,
        Signature.PLATEAU: plateau_penalty,
        Signature.COST_WITHOUT_BENEFIT: cost_without_benefit_penalty,
    }
    return [
        RewardTermSpec(name=f"antipattern_{sig.value}", compute=compute, presets=dict(PRESETS),
                       description=f"{PENALTIES[sig]:g} per seed showing the {sig.value} signature")
        for sig, compute in computes.items()
    ]
