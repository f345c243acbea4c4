"""The action mask: which decisions the lifecycle would accept this epoch."""

from __future__ import annotations

from collections.abc import Sequence

from esper_core.contracts.decisions import ActionMask, Op
from esper_core.contracts.reports import SlotReport
from esper_core.contracts.specs import BlueprintSpec, GateResult
from esper_core.contracts.stages import LIVE_STAGES, SeedStage
from esper_core.plugins.blame import blame, module_of

_ADVANCEABLE = {SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.SHADOWING}


def build_action_mask(
    slots: Sequence[SlotReport],
    blueprints: Sequence[BlueprintSpec],
    *,
    max_seeds: int,
    param_budget: int | None,
    seed_params_in_use: int,
    auto_advance: bool,
    gate_previews: Sequence[GateResult | None] | None = None,
) -> ActionMask:
    """Mask for ``slots`` given the seed cap and the remaining parameter budget.

    ADVANCE is offered only when the lifecycle does not advance by itself. A blueprint is
    allowed when it fits the remaining budget in at least one free slot (the G0 gate re-checks
    the exact slot, and the module actually built, at germination). ``gate_previews`` (one per
    slot, from :meth:`MorphogeneticModel.preview_gates`) narrows FOSSILIZE and ADVANCE to the
    slots whose gates into the next stage would pass now; without it they are offered by stage.
    """
    if gate_previews is not None and len(gate_previews) != len(slots):
        raise ValueError(f"gate_previews needs one entry per slot ({len(slots)}), got {len(gate_previews)}")
    live = sum(1 for s in slots if s.stage in LIVE_STAGES)
    rows: dict[Op, list[bool]] = {op: [False] * len(slots) for op in Op}
    for i, s in enumerate(slots):
        rows[Op.GERMINATE][i] = s.stage is SeedStage.DORMANT and live < max_seeds
        rows[Op.ADVANCE][i] = not auto_advance and s.stage in _ADVANCEABLE
        rows[Op.CULL][i] = s.stage in LIVE_STAGES
        rows[Op.FOSSILIZE][i] = s.stage is SeedStage.PROBATIONARY
        if gate_previews is not None:
            preview = gate_previews[i]
            passes = preview is not None and preview.passed
            rows[Op.ADVANCE][i] = rows[Op.ADVANCE][i] and passes
            rows[Op.FOSSILIZE][i] = rows[Op.FOSSILIZE][i] and passes
    # Each blueprint's parameters in each slot, computed once: the budget check below and the
    # controllers' cost-aware choices (ActionMask.costs) read the same figures.
    costs = [[_estimate(b, s.width) for b in blueprints] for s in slots]
    free = [i for i, ok in enumerate(rows[Op.GERMINATE]) if ok]
    remaining = None if param_budget is None else param_budget - seed_params_in_use
    allowed = [
        bool(free) and (remaining is None or any(costs[i][j] <= remaining for i in free))
        for j in range(len(blueprints))
    ]
    if not any(allowed):
        rows[Op.GERMINATE] = [False] * len(slots)
    return ActionMask(
        slots=[rows[op] for op in Op],
        blueprints=allowed,
        blueprint_keys=[b.key for b in blueprints],
        costs=costs,
        budget_left=remaining,
    )


def _estimate(blueprint: BlueprintSpec, width: int) -> int:
    with blame("blueprint", blueprint.key, module_of(blueprint.param_estimate), "param_estimate"):
        return int(blueprint.param_estimate(width))
