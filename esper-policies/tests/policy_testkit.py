"""Concise builders for EpochReports, ActionMasks and PolicyContexts used across the tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from esper_core.contracts import (
    LIVE_STAGES,
    ActionMask,
    Decision,
    EpochReport,
    Op,
    PolicyContext,
    SeedStage,
    SlotReport,
)

KEYS = ("cnn:conv_light", "cnn:attention", "cnn:norm")
S = SeedStage


def slot(
    index: int,
    stage: SeedStage = S.DORMANT,
    *,
    blueprint: str | None = None,
    epochs: int = 1,
    contribution: float | None = None,
    seed_gain: float | None = None,
    acc_at_germ: float | None = None,
    seed_gain_se: float | None = None,
    contribution_se: float | None = None,
) -> SlotReport:
    """One slot; a slot holding a seed (live, culled, fossilized) gets ``cnn:conv_light``
    unless told otherwise."""
    if blueprint is None and stage not in (S.DORMANT, S.UNKNOWN, S.RESETTING):
        blueprint = KEYS[0]
    return SlotReport(slot=f"layer{index + 1}", index=index, width=16, stage=stage,
                      blueprint=blueprint, epochs_in_stage=epochs, contribution=contribution,
                      seed_gain=seed_gain, accuracy_at_germination=acc_at_germ,
                      seed_gain_se=seed_gain_se, contribution_se=contribution_se)


def dormant(n: int) -> tuple[SlotReport, ...]:
    return tuple(slot(i) for i in range(n))


def report(
    epoch: int,
    acc: float,
    *,
    slots: Sequence[SlotReport] | None = None,
    loss: float | None = None,
    episode: int = 0,
    max_seeds: int = 1,
) -> EpochReport:
    return EpochReport(episode=episode, epoch=epoch, max_epochs=50, train_loss=1.0,
                       val_loss=loss if loss is not None else 2.0 - acc / 100, val_accuracy=acc,
                       host_params=10_000, seed_params=0,
                       slots=tuple(slots) if slots is not None else dormant(1),
                       max_seeds=max_seeds)


def mask(
    n_slots: int = 1,
    *,
    germinate: Iterable[int] = (),
    advance: Iterable[int] = (),
    cull: Iterable[int] = (),
    fossilize: Iterable[int] = (),
    blueprints: Iterable[str] | None = None,
    keys: Sequence[str] = KEYS,
) -> ActionMask:
    """A mask allowing exactly the listed slots per op and the listed blueprints (default all)."""
    rows: dict[Op, set[int]] = {Op.WAIT: set(), Op.GERMINATE: set(germinate),
                                Op.ADVANCE: set(advance), Op.CULL: set(cull),
                                Op.FOSSILIZE: set(fossilize)}
    allowed = set(keys if blueprints is None else blueprints)
    return ActionMask(slots=[[i in rows[op] for i in range(n_slots)] for op in Op],
                      blueprints=[k in allowed for k in keys], blueprint_keys=keys)


def lifecycle_mask(
    rep: EpochReport, *, advance: bool = False, keys: Sequence[str] = KEYS
) -> ActionMask:
    """What the run engine would allow for ``rep``: germinate into DORMANT slots under the
    live-seed limit, cull live seeds, fossilize probationary ones, advance when asked."""
    live = [s.index for s in rep.slots if s.stage in LIVE_STAGES]
    capacity = rep.live_seeds < rep.max_seeds
    return mask(
        len(rep.slots),
        germinate=[s.index for s in rep.slots if s.stage is S.DORMANT and capacity],
        advance=[s.index for s in rep.slots
                 if advance and s.stage in LIVE_STAGES and s.stage is not S.PROBATIONARY],
        cull=live,
        fossilize=[s.index for s in rep.slots if s.stage is S.PROBATIONARY],
        keys=keys,
    )


def context(
    options: Mapping[str, Any] | None = None, *, seed: int = 0, n_slots: int = 1,
    keys: Sequence[str] = KEYS,
) -> PolicyContext:
    return PolicyContext(slot_names=[f"layer{i + 1}" for i in range(n_slots)], blueprint_keys=keys,
                         topology="cnn", max_epochs=50, seed=seed, options=dict(options or {}))


def run(policy: Any, reports: Iterable[EpochReport], **mask_kw: Any) -> list[Decision]:
    """Decide on each report with its lifecycle mask; every decision must be allowed."""
    out = []
    for rep in reports:
        m = lifecycle_mask(rep, **mask_kw)
        decision = policy.decide(report=rep, mask=m)
        assert m.allows(decision), decision
        assert 0.0 <= decision.confidence <= 1.0
        assert decision.reason
        out.append(decision)
    return out
