"""Failure-signature detectors: turn per-epoch observations of a seed into typed anomalies.

The engine feeds one :class:`SeedObservation` per live seed per epoch — everything in it comes
from the epoch's :class:`~esper_core.contracts.reports.EpochReport` / ``SlotReport`` plus the
seed's gradient norm and a finite flag — and the :class:`FailureDetector` returns
:class:`~esper_core.contracts.events.Anomaly` events naming the slot and the signature. The
``(slot, signature)`` pairs then go into ``RewardContext.anomalies``, where the reward terms
in :mod:`esper_antipatterns.rewards` price them. Torch-free.

An anti-pattern seed is also checked against its catalog entry: each of its anomalies carries
the ``expected`` signature and whether it ``matches``, and when the seed's life ends (cull,
fossilization, the episode's last epoch) without its expected signature ever appearing (or,
for an entry that expects none, with one), a ``signature_mismatch`` anomaly records what was
detected instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from attrs import define, field, frozen, validators

from esper_antipatterns.catalog import ALL_ANTIPATTERNS, NO_SIGNATURE
from esper_antipatterns.signatures import SIGNATURE_MISMATCH, Signature
from esper_core.contracts.events import Anomaly
from esper_core.contracts.reports import EpochReport, SlotReport
from esper_core.contracts.stages import SeedStage
from esper_core.options import int_at_least, non_negative_number, positive_number


def _optional_number(instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    # NaN and Inf are allowed: they are what the detector looks for.
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise TypeError(f"{attribute.name} must be a number or None, got {value!r}")


def _non_negative_or_non_finite(instance: object, attribute: attrs.Attribute[Any],
                                value: float | None) -> None:
    _optional_number(instance, attribute, value)
    if value is not None and math.isfinite(value) and value < 0:
        raise ValueError(f"{attribute.name} is a norm and cannot be negative, got {value!r}")


_count = [validators.instance_of(int), validators.ge(0)]
_optional_count = validators.optional(_count)


@frozen(kw_only=True)
class SeedObservation:
    """What the engine knows about one live seed at the end of one epoch.

    ``grad_norm`` is the L2 norm of the seed's parameter gradients (over the epoch's last step
    or averaged over the epoch); ``None`` when the seed had no gradient this epoch (not
    training, or parameter-free). ``finite`` is False when the seed's output, loss, gradients
    or parameters held a NaN/Inf (e.g. the safety governor rolled back because of it).
    ``contribution`` is the counterfactual accuracy contribution in points (``None`` before
    BLENDING); ``seed_gain`` what switching a TRAINING seed fully on would add (points; its
    forward is still the host's). FLOPs are optional and, when given, priced like parameters.
    """

    slot: str = field(validator=validators.min_len(1))
    blueprint: str = field(validator=validators.min_len(1))
    epoch: int = field(validator=[validators.instance_of(int), validators.ge(1)])
    val_accuracy: float = field(validator=_optional_number)
    grad_norm: float | None = field(default=None, validator=_non_negative_or_non_finite)
    finite: bool = field(default=True, validator=validators.instance_of(bool))
    contribution: float | None = field(default=None, validator=_optional_number)
    seed_gain: float | None = field(default=None, validator=_optional_number)
    accuracy_at_germination: float | None = field(default=None, validator=_optional_number)
    seed_params: int = field(default=0, validator=_count)
    host_params: int = field(default=0, validator=_count)
    seed_flops: int | None = field(default=None, validator=_optional_count)
    host_flops: int | None = field(default=None, validator=_optional_count)
    germinated_epoch: int | None = field(default=None, validator=_optional_count)
    episode: int = field(default=0, validator=_count)
    stage: str = ""

    @classmethod
    def from_reports(cls, report: EpochReport, slot: SlotReport, *, grad_norm: float | None,
                     finite: bool = True, seed_flops: int | None = None,
                     host_flops: int | None = None) -> SeedObservation:
        """Build an observation from the engine's reports plus the seed's gradient norm."""
        if slot.blueprint is None:
            raise ValueError(f"slot {slot.slot!r} holds no seed (stage {slot.stage.name})")
        return cls(slot=slot.slot, blueprint=slot.blueprint, epoch=report.epoch,
                   episode=report.episode, val_accuracy=report.val_accuracy,
                   grad_norm=grad_norm, finite=finite, contribution=slot.contribution,
                   seed_gain=slot.seed_gain, accuracy_at_germination=slot.accuracy_at_germination,
                   seed_params=slot.seed_params, host_params=report.host_params,
                   seed_flops=seed_flops, host_flops=host_flops,
                   germinated_epoch=slot.germinated_epoch, stage=slot.stage.name)


    @property
    def benefit(self) -> float | None:
        """The seed's measured benefit (points): its counterfactual contribution once blended,
        its seed gain while in TRAINING, None before either is measured."""
        return self.contribution if self.contribution is not None else self.seed_gain

    @property
    def accuracy_with_seed(self) -> float:
        """Validation accuracy of the model with this seed in it: a TRAINING seed is not in
        the forward yet, so its accuracy is the measured one plus its seed gain."""
        if self.contribution is None and self.seed_gain is not None:
            return self.val_accuracy + self.seed_gain
        return self.val_accuracy


@frozen(kw_only=True)
class DetectorConfig:
    """Thresholds of the five signatures (defaults from seed 000 and DESIGN §6)."""

    #: Seed gradient norm below which gradients have collapsed (seed 000: 1e-7).
    collapse_below: float = field(default=1e-7, validator=positive_number())
    #: Seed gradient norm above which gradients have exploded (seed 000: 1e4).
    explode_above: float = field(default=1e4, validator=positive_number())
    #: Epochs of accuracy history, while the seed is live, that define a plateau.
    plateau_window: int = field(default=5, validator=int_at_least(1))
    #: A plateau is a window whose best accuracy (with the seed in the model) beats the best
    #: before it — or, for the seed's first window, the accuracy when it was planted — by less
    #: than this (points).
    plateau_min_delta: float = field(default=0.5, validator=non_negative_number())
    #: Largest acceptable growth of the model (percent of host params or FLOPs) per accuracy
    #: point of benefit; a seed that costs more is "cost without benefit".
    max_growth_per_point: float = field(default=10.0, validator=positive_number())
    #: Epochs with a measured benefit (seed gain in TRAINING, contribution once blended) before
    #: cost is judged, on the best benefit seen: a good seed often starts with a negative seed
    #: gain, so it gets as long as the heuristic's patience (5 epochs) to show one. Cost is
    #: never judged in BLENDING, where the contribution is of the seed at partial α.
    cost_min_epochs: int = field(default=5, validator=int_at_least(1))

    def __attrs_post_init__(self) -> None:
        if self.collapse_below >= self.explode_above:
            raise ValueError(f"collapse_below ({self.collapse_below}) must be below "
                             f"explode_above ({self.explode_above})")


def growth_per_point(obs: SeedObservation, benefit: float | None = None) -> float | None:
    """Model growth (percent, the larger of params and FLOPs) per point of ``benefit``
    (default: the observation's own, :attr:`SeedObservation.benefit`).

    ``None`` before a benefit is measured or when the seed costs nothing; ``inf`` when a
    costly seed brings nothing or hurts.
    """
    benefit = obs.benefit if benefit is None else benefit
    if benefit is None:
        return None
    growths = []
    if obs.seed_params > 0:
        growths.append(100.0 * obs.seed_params / max(1, obs.host_params))
    if obs.seed_flops and obs.seed_flops > 0:
        growths.append(100.0 * obs.seed_flops / max(1, obs.host_flops or 0))
    if not growths:
        return None
    if not math.isfinite(benefit) or benefit <= 0:
        return math.inf
    return max(growths) / benefit


@frozen
class _SeedIdentity:
    blueprint: str
    germinated_epoch: int | None


@define
class _SeedHistory:
    identity: _SeedIdentity
    #: Accuracy with the seed in the model, one per observed epoch.
    accuracies: list[float] = field(factory=list)
    #: Accuracy when the seed was planted (the reference of its first plateau window).
    planted_accuracy: float | None = None
    measured_epochs: int = 0
    best_benefit: float = -math.inf
    cost_flagged: bool = False
    #: Signatures shown so far, in order of first appearance (for the end-of-life check).
    detected: list[str] = field(factory=list)
    episode: int = 0


def _catalogued_signatures() -> dict[str, str]:
    return {entry.key: entry.expected_value for entry in ALL_ANTIPATTERNS}


@define
class FailureDetector:
    """Watches every slot's seed across epochs and reports failure signatures.

    Per-occurrence signatures (non-finite values, gradient collapse, gradient explosion) fire
    every epoch they are observed; a plateau fires every epoch it lasts (seed 000: "−5
    cumulative"); cost without benefit fires once per seed ("−1 per wasteful selection").
    A slot's history restarts when a different seed (blueprint or germination epoch) appears.
    """

    config: DetectorConfig = field(factory=DetectorConfig)
    run_id: str = ""
    #: Blueprint key -> the signature it should show (default: the anti-pattern catalog's).
    expected: Mapping[str, str] = field(factory=_catalogued_signatures)
    _histories: dict[str, _SeedHistory] = field(factory=dict, init=False)

    def observe(self, obs: SeedObservation) -> list[Anomaly]:
        """Record one epoch of one seed; return the anomalies it shows (possibly none)."""
        history = self._history_for(obs)
        history.accuracies.append(obs.accuracy_with_seed)
        found: list[tuple[Signature, str, float | None]] = []

        grad = obs.grad_norm
        if not obs.finite or (grad is not None and not math.isfinite(grad)):
            # A non-finite seed says nothing trustworthy about its gradient size or accuracy.
            found.append((Signature.NAN_INF, "non-finite values in the seed's computation", grad))
        else:
            if grad is not None and obs.seed_params > 0 and grad < self.config.collapse_below:
                found.append((Signature.GRADIENT_COLLAPSE,
                              f"seed gradient norm {grad:.3g} < {self.config.collapse_below:g}", grad))
            if grad is not None and grad > self.config.explode_above:
                found.append((Signature.GRADIENT_EXPLOSION,
                              f"seed gradient norm {grad:.3g} > {self.config.explode_above:g}", grad))
            plateau = self._plateau_gain(history)
            if plateau is not None:
                found.append((Signature.PLATEAU,
                              f"accuracy improved {plateau:.2f} points in the last "
                              f"{self.config.plateau_window} epochs with the seed live", plateau))
            cost = self._cost(history, obs)
            if cost is not None:
                found.append((Signature.COST_WITHOUT_BENEFIT,
                              f"{cost:.3g}% model growth per accuracy point of its best benefit "
                              f"{history.best_benefit:+.2f} over {history.measured_epochs} epochs "
                              f"(limit {self.config.max_growth_per_point:g})", cost))

        history.episode = obs.episode
        expected = self.expected.get(obs.blueprint)
        for sig, _, _ in found:
            if sig.value not in history.detected:
                history.detected.append(sig.value)
        return [Anomaly(run_id=self.run_id, episode=obs.episode, epoch=obs.epoch, slot=obs.slot,
                        signature=sig.value, detail=f"{obs.blueprint}: {detail}", value=value,
                        expected=expected, matches=None if expected is None else sig.value == expected)
                for sig, detail, value in found]

    def observe_all(self, observations: Sequence[SeedObservation]) -> list[Anomaly]:
        """Observe several seeds of one epoch; anomalies in the order given."""
        return [a for obs in observations for a in self.observe(obs)]

    def observe_report(self, report: EpochReport, *, grad_norms: Mapping[str, float | None],
                       finite: Mapping[str, bool] | None = None) -> list[Anomaly]:
        """Observe every live seed of ``report``; slots without a seed are forgotten.

        ``grad_norms`` and ``finite`` are keyed by slot name (missing: no gradient / finite).
        A seed whose life ended (its slot no longer live, or the episode's last epoch) gets its
        end-of-life check (:meth:`forget`).
        """
        finite = finite or {}
        observations = []
        ended: list[Anomaly] = []
        for slot in report.slots:
            if slot.live and slot.blueprint is not None:
                observations.append(SeedObservation.from_reports(
                    report, slot, grad_norm=grad_norms.get(slot.slot),
                    finite=finite.get(slot.slot, True)))
            else:
                if report.rollbacks and slot.stage is SeedStage.CULLED and self._unattributed(slot, report):
                    ended.append(self._rolled_back(slot.slot, report))
                ended += self.forget(slot.slot, epoch=report.epoch)
        anomalies = self.observe_all(observations)
        if report.epoch >= report.max_epochs:
            for obs in observations:
                anomalies += self.forget(obs.slot, epoch=report.epoch)
        return ended + anomalies

    def _unattributed(self, slot: SlotReport, report: EpochReport) -> bool:
        """Whether ``slot``'s CULLED seed is one the rollback of this epoch may be blamed on.

        A seed observed live is (its history is still here). So is one germinated after the last
        observation — by the decision that closed the previous epoch — that the governor culled
        during this epoch's training before the observer ever saw it live: without this, a seed
        that goes non-finite in its first epoch leaves no signature at all. That seed gets its
        history here, so the end-of-life check that follows sees what it showed.
        """
        if slot.slot in self._histories:
            return True
        if slot.blueprint is None or slot.germinated_epoch is None or slot.germinated_epoch < report.epoch - 1:
            return False
        self._histories[slot.slot] = _SeedHistory(_SeedIdentity(slot.blueprint, slot.germinated_epoch),
                                                  planted_accuracy=slot.accuracy_at_germination,
                                                  episode=report.episode)
        return True

    def _rolled_back(self, slot: str, report: EpochReport) -> Anomaly:
        """The non-finite signature of a seed culled during the epoch by a governor rollback.

        The governor rolls back only on a non-finite loss, gradient or parameter and culls the
        seed it holds responsible, so by the time the observer looks the seed's values are
        repaired and its slot is CULLED: the rollback is the only trace of its NaN/Inf. A
        policy's cull shows only in a later epoch's report, after the epoch it was decided in.
        """
        history = self._histories[slot]
        if Signature.NAN_INF.value not in history.detected:
            history.detected.append(Signature.NAN_INF.value)
        expected = self.expected.get(history.identity.blueprint)
        return Anomaly(run_id=self.run_id, episode=report.episode, epoch=report.epoch, slot=slot,
                       signature=Signature.NAN_INF.value, expected=expected,
                       matches=None if expected is None else expected == Signature.NAN_INF.value,
                       detail=f"{history.identity.blueprint}: culled by a governor rollback "
                              "(non-finite loss, gradient or parameter)")

    def forget(self, slot: str, *, epoch: int = 0) -> list[Anomaly]:
        """Drop a slot's history (its seed was culled or fossilized, or the episode ended).

        Returns the ``signature_mismatch`` anomaly of a seed that never showed the signature
        its blueprint is catalogued with, or showed one where its catalog entry expects none
        (empty otherwise).
        """
        history = self._histories.pop(slot, None)
        if history is None:
            return []
        blueprint = history.identity.blueprint
        expected = self.expected.get(blueprint)
        if expected is None or expected in history.detected:
            return []
        if expected == NO_SIGNATURE and not history.detected:
            return []
        detected = ", ".join(history.detected) or "nothing"
        return [Anomaly(run_id=self.run_id, episode=history.episode, epoch=epoch, slot=slot,
                        signature=SIGNATURE_MISMATCH, expected=expected, matches=False,
                        detail=f"{blueprint}: expected {expected}, detected {detected}")]

    def reset(self) -> None:
        """Forget every slot, e.g. at the start of an episode."""
        self._histories.clear()

    def _history_for(self, obs: SeedObservation) -> _SeedHistory:
        identity = _SeedIdentity(obs.blueprint, obs.germinated_epoch)
        history = self._histories.get(obs.slot)
        if history is None or history.identity != identity:
            history = self._histories[obs.slot] = _SeedHistory(
                identity, planted_accuracy=obs.accuracy_at_germination)
        return history

    def _plateau_gain(self, history: _SeedHistory) -> float | None:
        """The window's improvement over its reference, if that is a plateau, else None.

        The reference is the best accuracy before the window or, while the seed has only one
        window of history, the accuracy when it was planted (None when unknown).
        """
        window, accuracies = self.config.plateau_window, history.accuracies
        if len(accuracies) < window:
            return None
        before, recent = accuracies[:-window], accuracies[-window:]
        if not before and history.planted_accuracy is not None:
            before = [history.planted_accuracy]
        if not before or not all(math.isfinite(a) for a in recent + before):
            return None
        gain = max(recent) - max(before)
        return gain if gain < self.config.plateau_min_delta else None

    def _cost(self, history: _SeedHistory, obs: SeedObservation) -> float | None:
        benefit = obs.benefit
        if benefit is None or not math.isfinite(benefit):
            return None
        history.measured_epochs += 1
        history.best_benefit = max(history.best_benefit, benefit)
        if history.cost_flagged or history.measured_epochs < self.config.cost_min_epochs:
            return None
        if obs.stage == "BLENDING":
            # While α ramps up, the contribution measures a part of the seed (α against 0), so
            # a seed that ends up fossilized with a large contribution looks costly here: it
            # is judged on its seed gain before blending and its full contribution after.
            return None
        cost = growth_per_point(obs, history.best_benefit)
        if cost is None or cost <= self.config.max_growth_per_point:
            return None
        history.cost_flagged = True
        return cost
