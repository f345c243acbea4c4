"""HeuristicPolicy: the hand-written Tamiyo baseline (DESIGN §6).

Each epoch the policy updates its :class:`~esper_policies.tracker.SignalTracker`, applies the
blueprint-penalty bookkeeping once for the epoch, and then considers, in priority order:

1. **Cull** a live seed (every slot is checked, worst first):
   a. val accuracy fell by more than ``cull_if_accuracy_drops_by`` (2) points since the seed
      germinated, while the seed is in the forward (BLENDING, SHADOWING, PROBATIONARY); or
   b. ``cull_after_epochs_without_improvement`` (5) consecutive epochs in its current stage
      without improvement (GERMINATED … SHADOWING). "Improvement" is the lower confidence
      bound of the stage's own measure (minus ``confidence_z`` standard errors, as the gates
      do) exceeding ``min_seed_improvement`` (0): ``seed_gain`` before blending (the seed's
      output is not mixed in yet, so only its would-be gain means anything), the
      counterfactual ``contribution`` from BLENDING on. PROBATIONARY is left to the
      lifecycle's probation timeout, which culls a seed that never earns fossilization.
2. **Fossilize** a PROBATIONARY seed whose contribution's lower confidence bound
   (``contribution − confidence_z·se``) > ``fossilize_min_contribution`` — the G5 defaults
   (0 points at z = 1.645), so the heuristic proposes exactly what G5 accepts; below that it
   keeps waiting. Where a task's G5 asks more (``micro``: 1 point), the action mask, which
   offers FOSSILIZE only where G5 would pass (``[kasmina] mask_by_gates``), passes over the
   proposal as it does any masked candidate.
3. **Advance** a live seed (GERMINATED … SHADOWING) that has no cull reason, when the mask
   offers ADVANCE for its slot (lifecycles run with ``auto_advance`` off) and
   ``advance_when_allowed`` is on. PROBATIONARY is never advanced: that would fossilize
   without the contribution check.
4. **Germinate** when epoch ≥ ``min_epochs_before_germinate`` (1), the smoothed plateau has
   lasted ≥ ``plateau_epochs_to_germinate`` epochs (0 by default: no plateau needed; DESIGN
   §6's 5 and 3 germinated too late to pay on the default task, docs/growth.md), no cull was
   seen in the last ``embargo_epochs_after_cull`` (5) epochs, and the mask allows GERMINATE in a
   DORMANT slot with at least one allowed blueprint, chosen by
   :class:`~esper_policies.rotation.BlueprintRotation`: by default the first one in the task's
   blueprint order (its order of preference) that has not been culled, a blueprint whose seed
   fossilized going first (``repeat_fossilized_blueprint``), or cycling through them
   (``blueprint_choice = "rotate"``). The choice is cost-aware: a blueprint is considered only
   where its parameters (the mask's ``costs``) keep all seeds within ``max_added_fraction``
   (1.0) of the host's own parameter count, and it goes into the free slot where it costs the
   fewest parameters (``slot_choice = "cheapest"``). The mask encodes the live-seed limit.
5. Otherwise **wait**, saying what blocks germination and how each live seed is doing.

A candidate the mask refuses is passed over (and named in the reason of what is chosen); if
no candidate is allowed the policy waits and says which action was masked. Every decision
carries a specific reason and a confidence in [0, 1]: 0.5 when a rule is only just met, rising
linearly (:func:`_ramp`) to 1 as the evidence grows (drop beyond the threshold, extra stale or
plateau epochs, contribution above the bar); WAIT is 1.0 when a hard rule or the mask blocks
germination and ``1 − ½·plateau/needed`` while a plateau is building.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import structlog
from attrs import frozen

from esper_core.contracts.decisions import ActionMask, Decision, Op
from esper_core.contracts.protocols import PolicyContext
from esper_core.contracts.reports import EpochReport, TrainingSignals
from esper_core.contracts.stages import BLENDED_STAGES, NEXT_STAGE, SeedStage
from esper_policies.heuristic_config import HeuristicConfig
from esper_policies.rotation import BlueprintRotation
from esper_policies.tracker import SignalTracker, SlotSignals

logger = structlog.get_logger(__name__)

__all__ = ["DecisionRecord", "HeuristicConfig", "HeuristicPolicy"]

_ADVANCEABLE = frozenset(NEXT_STAGE) - {SeedStage.PROBATIONARY}


@frozen(kw_only=True)
class DecisionRecord:
    """One entry of the policy's bounded decision history."""

    episode: int
    epoch: int
    decision: Decision


def _ramp(excess: float, scale: float) -> float:
    """Confidence that grows from 0.5 (rule just met) to 1.0 (met by ``scale`` or more)."""
    return 0.5 + 0.5 * min(1.0, max(0.0, excess / scale))


def _noting_masked(decision: Decision, masked: list[str]) -> Decision:
    """``decision`` with the higher-priority actions the mask refused appended to its reason."""
    if not masked:
        return decision
    return attrs.evolve(decision, reason=f"{decision.reason} (masked first: {'; '.join(masked)})")


def _label(s: SlotSignals) -> str:
    return f"{s.blueprint or 'seed'} in slot {s.index} ({s.name})"


def _measure(s: SlotSignals) -> str:
    if s.improvement is None:
        return f"{s.improvement_source} not measured"
    return f"{s.improvement_source} {s.improvement:+.2f}"


class HeuristicPolicy:
    """Rule-based controller: plateau-triggered germination, stage-aware culling."""

    name = "heuristic"

    def __init__(
        self,
        config: HeuristicConfig | None = None,
        *,
        blueprint_keys: Sequence[str] = (),
    ) -> None:
        self.config = config or HeuristicConfig()
        self.tracker = SignalTracker(self.config.tracker_config())
        self.rotation = BlueprintRotation(
            blueprint_keys,
            penalty_on_cull=self.config.blueprint_penalty_on_cull,
            decay=self.config.blueprint_penalty_decay,
            threshold=self.config.blueprint_penalty_threshold,
            rotate=self.config.blueprint_choice == "rotate",
        )
        # An audit log, not episode state: kept across episodes, bounded.
        self._history: deque[DecisionRecord] = deque(maxlen=self.config.decision_history)
        self.reset(episode=0)

    @classmethod
    def from_context(cls, *, context: PolicyContext) -> HeuristicPolicy:
        """The registered factory: options validated, rotation over the catalog order."""
        config = HeuristicConfig.from_options(context.options)
        return cls(config, blueprint_keys=context.blueprint_keys)

    def reset(self, *, episode: int) -> None:
        self._episode = episode
        self.tracker.reset()
        self.rotation.reset()
        self._bookkept_epoch: int | None = None
        self._next_slot = 0
        self._fossilized: set[int] = set()

    def state_dict(self) -> dict[str, Any]:
        """Tracker, rotation, per-epoch bookkeeping and decision history (run checkpoints)."""
        return {"episode": self._episode, "tracker": self.tracker.state_dict(),
                "rotation": self.rotation.state_dict(), "bookkept_epoch": self._bookkept_epoch,
                "next_slot": self._next_slot, "history": list(self._history),
                "fossilized": sorted(self._fossilized)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._episode = state["episode"]
        self.tracker.load_state_dict(state["tracker"])
        self.rotation.load_state_dict(state["rotation"])
        self._bookkept_epoch = state["bookkept_epoch"]
        self._next_slot = state["next_slot"]
        self._fossilized = set(state.get("fossilized", ()))
        self._history = deque(state["history"], maxlen=self.config.decision_history)

    @property
    def history(self) -> tuple[DecisionRecord, ...]:
        return tuple(self._history)

    def decide(self, *, report: EpochReport, mask: ActionMask) -> Decision:
        if report.episode != self._episode:
            self.reset(episode=report.episode)
        signals = self.tracker.update(report)
        self._bookkeep(report.epoch)
        decision = self._choose(signals, mask)
        if not mask.allows(decision):  # pragma: no cover - every proposal is checked first
            decision = Decision.wait(f"{decision.describe()} is not allowed by the mask")
        self._history.append(
            DecisionRecord(episode=report.episode, epoch=report.epoch, decision=decision)
        )
        logger.debug("heuristic_decision", episode=report.episode, epoch=report.epoch,
                     op=decision.op.name, slot=decision.slot, blueprint=decision.blueprint,
                     reason=decision.reason, confidence=decision.confidence)
        return decision

    # -- per-epoch bookkeeping -------------------------------------------------------------

    def _bookkeep(self, epoch: int) -> None:
        """Decay penalties and charge culls exactly once per epoch, however often we decide."""
        if self._bookkept_epoch == epoch:
            return
        self._bookkept_epoch = epoch
        self.rotation.advance_to(epoch)
        for cull in self.tracker.new_culls:
            if cull.blueprint is None:
                continue
            penalty = self.rotation.penalise(cull.blueprint)
            logger.debug("heuristic_blueprint_penalised", blueprint=cull.blueprint,
                         penalty=penalty, slot=cull.slot_name, epoch=epoch)
        for s in self.tracker.slots:
            if s.stage is SeedStage.FOSSILIZED and s.index not in self._fossilized:
                self._fossilized.add(s.index)
                if self.config.repeat_fossilized_blueprint and s.blueprint is not None:
                    self.rotation.prefer(s.blueprint)

    # -- choosing --------------------------------------------------------------------------

    def _choose(self, signals: TrainingSignals, mask: ActionMask) -> Decision:
        ranked: list[tuple[tuple[int, float], Decision]] = []
        notes: list[str] = []
        for s in self.tracker.slots:
            if not s.live:
                continue
            proposal = self._seed_proposal(s, signals, mask)
            if isinstance(proposal, str):
                notes.append(proposal)
            else:
                ranked.append(proposal)
        ranked.sort(key=lambda item: item[0])

        masked: list[str] = []
        for _, candidate in ranked:
            if mask.allows(candidate):
                return _noting_masked(candidate, masked)
            masked.append(f"{candidate.describe()} [{candidate.reason}]")

        # Germination is considered only now: picking a blueprint or a rotating slot moves
        # the rotation, which must happen only when the germination is actually issued.
        germination = self._germination(signals, mask)
        if isinstance(germination, Decision):
            return _noting_masked(germination, masked)
        germ_note, hard_block, wait_confidence = germination

        parts = [f"wanted {m} but the mask forbids it" for m in masked]
        parts.append(germ_note)
        parts.extend(notes)
        reason = f"wait after epoch {signals.report.epoch}: " + "; ".join(parts)
        confidence = 1.0 if masked or hard_block else wait_confidence
        return Decision.wait(reason, confidence=confidence)

    def _seed_proposal(
        self, s: SlotSignals, signals: TrainingSignals, mask: ActionMask
    ) -> tuple[tuple[int, float], Decision] | str:
        """A ranked CULL/FOSSILIZE/ADVANCE proposal for one live seed, or a status note."""
        cfg = self.config
        epoch = signals.report.epoch
        change = s.accuracy_change_since_germination
        # Only a seed in the forward can have lowered the accuracy: before BLENDING the model
        # computes exactly the host, whose accuracy moves by several points an epoch early on
        # (measured: a conv_light seed culled one epoch after germination by this rule while the
        # host alone dipped 2.4 points).
        in_forward = s.stage in BLENDED_STAGES
        if in_forward and change is not None and -change > cfg.cull_if_accuracy_drops_by:
            drop = -change
            reason = (f"val accuracy {signals.report.val_accuracy:.2f} is {drop:.2f} points below "
                      f"{s.accuracy_at_germination:.2f} at germination (> "
                      f"{cfg.cull_if_accuracy_drops_by:g}) after epoch {epoch}: cull {_label(s)}")
            confidence = _ramp(drop - cfg.cull_if_accuracy_drops_by, cfg.cull_if_accuracy_drops_by)
            return (0, -drop), Decision(
                op=Op.CULL, slot=s.index, reason=reason, confidence=confidence
            )

        limit = cfg.cull_after_epochs_without_improvement
        if s.stage is not SeedStage.PROBATIONARY and s.epochs_without_improvement >= limit:
            reason = (f"no improvement for {s.epochs_without_improvement} epochs in {s.stage.name} "
                      f"(≥ {limit}; {_measure(s)}, needs > {cfg.min_seed_improvement:g}) "
                      f"after epoch {epoch}: cull {_label(s)}")
            confidence = _ramp(s.epochs_without_improvement - limit + 1, limit)
            return (1, -s.epochs_without_improvement), Decision(
                op=Op.CULL, slot=s.index, reason=reason, confidence=confidence
            )

        if s.stage is SeedStage.PROBATIONARY:
            threshold = cfg.fossilize_min_contribution
            if s.improvement is not None and s.improvement > threshold:
                reason = (f"{s.improvement_source} {s.improvement:+.2f} > {threshold:g} in PROBATIONARY "
                          f"after epoch {epoch}: fossilize {_label(s)}")
                confidence = _ramp(s.improvement - threshold, max(abs(threshold), 0.5))
                return (2, -s.improvement), Decision(
                    op=Op.FOSSILIZE, slot=s.index, reason=reason, confidence=confidence
                )
            return f"{_label(s)} on probation: {_measure(s)} ≤ {threshold:g} to fossilize"

        if cfg.advance_when_allowed and s.stage in _ADVANCEABLE and mask.slots[Op.ADVANCE][s.index]:
            reason = (f"{s.stage.name} for {s.epochs_in_stage} epochs, {_measure(s)}, "
                      f"no cull reason after epoch {epoch}: "
                      f"advance {_label(s)} to {NEXT_STAGE[s.stage].name}")
            gain = s.improvement if s.improvement is not None else 0.0
            # Deeper stages first: finishing a seed frees capacity sooner.
            return (3, -int(s.stage)), Decision(
                op=Op.ADVANCE, slot=s.index, reason=reason, confidence=_ramp(gain, 1.0)
            )
        return (f"{_label(s)} {s.stage.name} ({_measure(s)}, "
                f"{s.epochs_without_improvement}/{limit} epochs without improvement)")

    def _germination(
        self, signals: TrainingSignals, mask: ActionMask
    ) -> Decision | tuple[str, bool, float]:
        """A GERMINATE decision, or (why not, whether a hard rule blocks it, WAIT confidence)."""
        cfg = self.config
        report = signals.report
        if report.epoch < cfg.min_epochs_before_germinate:
            return (f"epoch {report.epoch} < {cfg.min_epochs_before_germinate} before germinating",
                    True, 1.0)
        last_cull = self.tracker.last_cull_epoch
        if last_cull is not None and signals.epochs_since_cull < cfg.embargo_epochs_after_cull:
            return (f"embargo: last cull {signals.epochs_since_cull} epochs ago "
                    f"(epoch {last_cull}) < {cfg.embargo_epochs_after_cull}", True, 1.0)
        needed = cfg.plateau_epochs_to_germinate
        if needed and signals.plateau_epochs < needed:
            progress = signals.plateau_epochs / needed
            return (f"plateau {signals.plateau_epochs} epochs < {needed} (smoothed Δ "
                    f"{signals.smoothed_delta:+.2f} vs {cfg.plateau_threshold:g})",
                    False, 1.0 - 0.5 * progress)
        plateau = (f"plateau {signals.plateau_epochs} epochs ≥ {needed}" if needed else
                   f"epoch {report.epoch} ≥ {cfg.min_epochs_before_germinate} (no plateau needed)")

        open_slots = [s for s in self.tracker.slots
                      if s.stage is SeedStage.DORMANT and mask.slots[Op.GERMINATE][s.index]]
        if not open_slots:
            return (f"{plateau} but the mask allows GERMINATE in no DORMANT slot (live seeds "
                    f"{report.live_seeds}/{report.max_seeds})", True, 1.0)
        allowed = [k for k, ok in zip(mask.blueprint_keys, mask.blueprints, strict=True) if ok]
        if not allowed:
            return f"{plateau} but the mask allows no blueprint", True, 1.0
        # Cost: every seed together stays within max_added_fraction of the host's parameters.
        cap = cfg.max_added_fraction * report.host_params - report.seed_params

        def fits(slot: SlotSignals, key: str) -> bool:
            cost = mask.cost(slot.index, key)
            return cost is None or cost <= cap
        affordable = [k for k in allowed if any(fits(s, k) for s in open_slots)]
        if not affordable:
            return (f"{plateau} but no allowed blueprint fits in a free slot within "
                    f"{cfg.max_added_fraction:g}× the host's {report.host_params} parameters "
                    f"({max(0, int(cap))} left)"), True, 1.0

        pick = self.rotation.pick(affordable)
        slot = self._pick_slot([s for s in open_slots if fits(s, pick.key)], pick.key, mask)
        cost = mask.cost(slot.index, pick.key)
        priced = "" if cost is None else f", {cost} parameters of {max(0, int(cap))} allowed"
        reason = (f"{plateau} after epoch {report.epoch}: germinate {pick.key} "
                  f"in slot {slot.index} ({slot.name}){priced}; "
                  f"{pick.describe(self.rotation.threshold)}")
        confidence = _ramp(signals.plateau_epochs - needed + 1, max(needed, 1))
        return Decision(op=Op.GERMINATE, slot=slot.index, blueprint=pick.key, reason=reason,
                        confidence=confidence)

    def _pick_slot(self, open_slots: list[SlotSignals], key: str, mask: ActionMask) -> SlotSignals:
        if self.config.slot_choice == "cheapest":
            # Accuracy per parameter: the same blueprint costs width² in a conv slot, so the
            # narrowest free slot buys it cheapest. Without costs this is "deepest".
            return min(open_slots, key=lambda s: (mask.cost(s.index, key) or 0, -s.index))
        if self.config.slot_choice == "deepest":
            # The deepest slot sits closest to the head, where a new module changes the
            # logits most directly; ties cannot occur (indices are unique).
            return max(open_slots, key=lambda s: s.index)
        ordered = sorted(open_slots, key=lambda s: s.index)
        chosen = next((s for s in ordered if s.index >= self._next_slot), ordered[0])
        self._next_slot = chosen.index + 1
        return chosen
