"""The built-in reward terms. Each returns an *unweighted* value for one controller step.

Units: accuracy points (0–100) unless said otherwise. Presets weight them (see
:func:`builtin_reward_terms`): ``shaped`` (default) uses every term, ``sparse`` only the
terminal accuracy and the rollback penalty, ``minimal`` adds parameter rent to those.
"""

from __future__ import annotations

from collections.abc import Callable

from esper_core.contracts.decisions import Op
from esper_core.contracts.protocols import RewardContext
from esper_core.contracts.reports import EpochReport
from esper_core.contracts.specs import RewardTermSpec
from esper_core.contracts.stages import BLENDED_STAGES, SeedStage

#: Discount of the potential-based shaping terms. 1: the episode's objective — the return
#: ``esper evaluate`` reports and controllers are compared by — is undiscounted, and with γ = 1
#: and terminal potential 0 the shaping terms of an episode sum to exactly 0 in it. (With PPO's
#: 0.99 they left a residue of −0.01·Φ per step: about −0.2 of return for a seed contributing
#: 10 points for 20 epochs, a cost on growth that no accuracy measurement backs. A learner that
#: discounts sees instead a small bonus, (1 − γ)·Φ per step, for the potential it holds.)
SHAPING_GAMMA = 1.0

#: Stage potentials Φ for shaping: progress along the happy path is worth more.
STAGE_POTENTIAL: dict[SeedStage, float] = {
    SeedStage.UNKNOWN: 0.0,
    SeedStage.DORMANT: 0.0,
    SeedStage.GERMINATED: 1.0,
    SeedStage.TRAINING: 2.0,
    SeedStage.BLENDING: 3.0,
    SeedStage.SHADOWING: 4.0,
    SeedStage.PROBATIONARY: 5.0,
    SeedStage.FOSSILIZED: 6.0,
    SeedStage.CULLED: 0.0,
    SeedStage.EMBARGOED: 0.0,
    SeedStage.RESETTING: 0.0,
}

ACTION_COSTS: dict[Op, float] = {
    Op.WAIT: 0.0,
    Op.GERMINATE: 1.0,
    Op.ADVANCE: 0.1,
    Op.CULL: 0.5,
    Op.FOSSILIZE: 0.1,
}


def credited_contribution(report: EpochReport, start_accuracy: float) -> float:
    """Sum of blended seeds' counterfactual contributions, metric(α) − metric(α=0).

    Guard against "ransomware" seeds — seeds that make the host depend on them (removing them
    hurts, so contribution is high) while the network as a whole got worse: when total
    improvement since the episode start is negative, positive contributions earn nothing.
    """
    total_improvement = report.val_accuracy - start_accuracy
    value = 0.0
    for slot in report.slots:
        if slot.stage in BLENDED_STAGES and slot.contribution is not None:
            contribution = slot.contribution
            if contribution > 0 and total_improvement < 0:
                contribution = 0.0
            value += contribution
    return value


def shaping(ctx: RewardContext, potential: Callable[[EpochReport], float]) -> float:
    """Potential-based shaping F = γΦ(s′) − Φ(s) for one step (Ng, Harada & Russell 1999).

    The potential before the first step (no previous report) is 0, and so is the potential of the
    terminal state: Ng et al.'s condition for an episodic task, under which the shaping terms of
    an episode telescope to 0 (exactly, with γ = 1) and the optimal policy is the unshaped
    reward's. Before terminal Φ was 0, a seed still fossilized (or blended) when the episode
    ended kept its potential as a bonus, so the return paid for how many seeds a policy kept
    rather than for the accuracy they bought: on ``shapes`` every catalog blueprint returned
    +0.8 to +1.1 over noop whatever it added to accuracy, ``norm`` (+2.9 test points) more than
    ``conv_heavy`` (+13.6) (docs/blueprint_returns_shapes_catalog.md as of commit 2983033; with
    terminal potential 0 conv_heavy and conv_light pay, +0.32 and +0.31 over noop, and norm
    does not, −0.04).
    """
    before = 0.0 if ctx.previous is None else potential(ctx.previous)
    after = 0.0 if ctx.terminal else potential(ctx.report)
    return SHAPING_GAMMA * after - before


def counterfactual_attribution(ctx: RewardContext) -> float:
    """Counterfactual credit as :func:`shaping` with Φ the blended seeds' :func:`credited_contribution`.

    A seed is credited with its contribution as it earns it, and pays the credit back when it
    leaves the blended stages — culled, fossilized or at the episode's end — so the credit guides
    learning without being an objective of its own. Paying the contribution itself every step
    (the term before the potential-based one) was exploited by PPO on ``micro``: after 20 rounds
    it germinated ``depthwise`` and culled it once blended (20 culls in 10 held-out episodes,
    nothing fossilized), collecting the credit of a seed it never kept — the best return of all
    policies (+4.80 against the heuristic's +1.00) with 2.0 points less test accuracy than the
    heuristic (docs/learned_controllers.md).
    """
    return shaping(ctx, lambda report: credited_contribution(report, ctx.start_accuracy))


def _stage_potential(report: EpochReport) -> float:
    return sum(STAGE_POTENTIAL[slot.stage] for slot in report.slots)


def stage_shaping(ctx: RewardContext) -> float:
    """:func:`shaping` over lifecycle stages: progress along the happy path is paid as it is made
    and paid back by a cull or when the episode ends."""
    return shaping(ctx, _stage_potential)


def parameter_rent(ctx: RewardContext) -> float:
    """−(seed parameters / host parameters) / episode epochs: growth must pay for itself.

    Charged every step, so dividing by the episode's epochs makes the episode's total rent
    independent of its length: a seed as large as the host, alive for the whole episode, costs
    1.0 in all — under the shaped preset the value of 10 points of final accuracy. (Charged
    undivided, 25 steps of rent for the default task's 9k-parameter seed on its 6k-parameter
    host outweighed any accuracy it could add, so no controller could learn to grow.)
    """
    return -ctx.report.seed_params / max(1, ctx.report.host_params) / max(1, ctx.report.max_epochs)


def action_cost(ctx: RewardContext) -> float:
    """−cost of the action taken (germinating is the most expensive), if it was applied."""
    return -ACTION_COSTS[ctx.decision.op] if ctx.decision_applied else 0.0


def terminal_accuracy(ctx: RewardContext) -> float:
    """Validation accuracy (points) at the last step of the episode, 0 before."""
    return ctx.report.val_accuracy if ctx.terminal else 0.0


def rollback_penalty(ctx: RewardContext) -> float:
    """−1 per safety-governor rollback during the step."""
    return -float(ctx.rollbacks)


def builtin_reward_terms() -> list[RewardTermSpec]:
    return [
        RewardTermSpec(name="counterfactual", compute=counterfactual_attribution,
                       description="potential-based: change in blended seeds' counterfactual contribution "
                                   "(ransomware-guarded)",
                       presets={"shaped": 0.1}),
        RewardTermSpec(name="stage_shaping", compute=stage_shaping,
                       description="potential-based shaping over lifecycle stages",
                       presets={"shaped": 0.1}),
        RewardTermSpec(name="param_rent", compute=parameter_rent,
                       description="-(seed params / host params) each step",
                       presets={"shaped": 1.0, "minimal": 1.0}),
        RewardTermSpec(name="action_cost", compute=action_cost,
                       description="cost of each applied action (germinate 1, cull 0.5, others 0.1)",
                       presets={"shaped": 0.1}),
        RewardTermSpec(name="terminal_accuracy", compute=terminal_accuracy,
                       description="final validation accuracy at the episode's last step",
                       presets={"shaped": 0.1, "sparse": 0.1, "minimal": 0.1}),
        RewardTermSpec(name="rollback_penalty", compute=rollback_penalty,
                       description="-1 per safety-governor rollback",
                       presets={"shaped": 1.0, "sparse": 1.0, "minimal": 1.0}),
    ]
