"""One seed slot: the per-stage forward and the slot's lifecycle state (DESIGN §4).

Forward by stage (``h`` is the host activation at the injection point, ``s`` the seed output):

* DORMANT, GERMINATED, CULLED, EMBARGOED, RESETTING: ``h`` itself (same tensor object, no copy).
* TRAINING, ``training_objective = "feedback"`` (default): ``h`` itself. The seed is trained by
  :class:`~esper_core.kasmina.training.SeedTrainer` on a second forward of the downstream
  segments with the seed switched in, so it learns from the effect of its own output while the
  host's forward and gradients are exactly those of the host alone.
* TRAINING, ``"straight_through"``: ``s = seed(h.detach())``, output ``h + (s − s.detach())``.
  The forward value is exactly ``h``, yet the task gradient reaches the seed through the ``+ s``
  term (Bengio et al. 2013, "Estimating or Propagating Gradients Through Stochastic Neurons").
  The seed then follows the first-order term ∂L/∂h·s, which is unbounded below: measured, its
  output scale grows every epoch and its gain over the no-seed path falls with training time.
* BLENDING, SHADOWING, PROBATIONARY: ``lerp(h, s, α) = h + α(s − h)``. The seed reads
  ``h.detach()`` when ``detach_host_in_blending`` (CNN default): the host then learns only from
  its own ``(1 − α)`` path and cannot co-adapt to feed the seed. Without detaching (transformer
  default) the host also receives ``α·∂s/∂h`` through the seed, which lets it co-adapt to the
  seed and makes the counterfactual "seed removed" partly a measure of the host's adaptation.
* FOSSILIZED: ``seed(h)``: α = 1, no isolation, the seed is part of the host.
"""

from __future__ import annotations

import torch
from attrs import define, field
from torch import Tensor, nn

from esper_core.contracts.protocols import InjectionPoint
from esper_core.contracts.specs import BlueprintSpec
from esper_core.contracts.stages import BLENDED_STAGES, LIVE_STAGES, SeedStage
from esper_core.kasmina.gradients import GradientRatioTracker

#: Stages in which a seed module exists.
SEEDED_STAGES = LIVE_STAGES | {SeedStage.FOSSILIZED}
#: Stages whose seeds an optimizer steps (a GERMINATED seed is not yet in the forward).
TRAINED_STAGES = frozenset({SeedStage.TRAINING}) | BLENDED_STAGES


@define
class SlotState:
    """Mutable per-slot bookkeeping (reset when the slot returns to DORMANT)."""

    #: Epoch at which the current stage was entered.
    stage_epoch: int = 0
    #: Lifecycle steps taken in the current stage (counted once per epoch after entry).
    epochs_in_stage: int = 0
    last_counted_epoch: int = -(2**31)
    #: Epochs already trained while blended (drives α).
    blend_epochs: int = 0
    germinated_epoch: int | None = None
    accuracy_at_germination: float | None = None
    #: Dependence on the seed (accuracy lost when it alone is removed), from BLENDING on.
    contribution: float | None = None
    #: Gain over the no-seed path (accuracy with the seed fully on minus without), in TRAINING.
    seed_gain: float | None = None
    #: Standard errors (points) of the two paired means above; None when not measured.
    contribution_se: float | None = None
    seed_gain_se: float | None = None
    #: (epoch, stage, contribution) of every validation measurement from BLENDING on.
    contributions: list[tuple[int, SeedStage, float]] = field(factory=list)
    gradient: GradientRatioTracker = field(factory=GradientRatioTracker)
    #: Norm of the seed's gradient at the last training step of the last epoch (for failure
    #: detectors, which run after the trainer has released the gradients).
    last_grad_norm: float | None = None
    #: Shape of the last activation seen in forward (G1 builds its probe from it).
    last_shape: torch.Size | None = None
    #: The seed's last output, kept by reference so the governor can find a non-finite seed.
    last_seed_output: Tensor | None = None


class SeedSlot(nn.Module):
    """A place in the host where a seed can live. Stage changes go through the model."""

    def __init__(
        self, name: str, point: InjectionPoint, *, index: int, detach_host_in_blending: bool,
        straight_through: bool = False,
    ) -> None:
        super().__init__()
        self.name = name
        self.point = point
        self.index = index
        self.detach_host_in_blending = detach_host_in_blending
        #: TRAINING forward: straight-through ``h + (s − s.detach())`` instead of ``h`` itself.
        self.straight_through = straight_through
        self.stage = SeedStage.DORMANT
        self.seed: nn.Module | None = None
        self.blueprint: BlueprintSpec | None = None
        self.alpha = 0.0
        #: Set by :meth:`MorphogeneticModel.force_alpha` for counterfactual passes.
        self.forced_alpha: float | None = None
        #: Running statistics of the downstream BatchNorm layers on the seed-switched-in path
        #: (feedback TRAINING only; see MorphogeneticModel.seed_path_statistics).
        self.seed_path_stats: nn.Module | None = None
        self.state = SlotState()

    @property
    def has_seed(self) -> bool:
        return self.seed is not None and self.stage in SEEDED_STAGES

    def _seed_input(self, host: Tensor) -> Tensor:
        if self.stage is SeedStage.FOSSILIZED:
            return host
        if self.stage in BLENDED_STAGES and not self.detach_host_in_blending:
            return host
        return host.detach()

    def forward(self, host: Tensor) -> Tensor:
        state = self.state
        state.last_shape = host.shape
        stage = self.stage
        if self.forced_alpha is not None:
            return self._forward_forced(host, self.forced_alpha)
        if stage is SeedStage.TRAINING:
            if not self.straight_through:
                return host
            s = self.seed(host.detach())  # type: ignore[misc]
            state.last_seed_output = s
            return host + (s - s.detach())
        if stage in BLENDED_STAGES:
            s = self.seed(self._seed_input(host))  # type: ignore[misc]
            state.last_seed_output = s
            return torch.lerp(host, s, self.alpha)
        if stage is SeedStage.FOSSILIZED:
            return self.seed(host)  # type: ignore[misc]
        return host

    def _forward_forced(self, host: Tensor, alpha: float) -> Tensor:
        # α = 0 is "seed removed": skip the seed entirely, which is both exact and free.
        if alpha == 0.0 or not self.has_seed:
            return host
        s = self.seed(self._seed_input(host))  # type: ignore[misc]
        self.state.last_seed_output = s
        if alpha == 1.0:
            return s
        return torch.lerp(host, s, alpha)

    def extra_repr(self) -> str:
        bp = self.blueprint.key if self.blueprint is not None else None
        return (f"name={self.name!r}, width={self.point.width}, stage={self.stage.name}, "
                f"blueprint={bp}")
