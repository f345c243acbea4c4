"""Training one epoch of a morphogenetic model: host and seeds, each with its own optimizer.

The host (plus fossilized seeds) has one optimizer; every live seed has its own, created when
the seed appears and dropped when it is culled; a fossilized seed's parameters join the host
optimizer as a new parameter group, keeping their optimizer state. Only seeds in the forward
(TRAINING and the blended stages) are stepped; a GERMINATED seed waits for G1.

**Seeds in TRAINING** (``training_objective = "feedback"``, the default) learn from the effect of
their own output while the host stays protected. Each step runs the host's forward as usual
(the slot passes the activation ``h`` through unchanged, so the host's loss and gradients are
exactly those of the host alone), keeping the activation entering every injection point. For
each TRAINING seed it then re-runs only the downstream suffix from that slot on ``h.detach()``
with the seed switched fully in, and takes the gradient of that loss with respect to the
seed's parameters alone (``torch.autograd.grad``): the downstream host layers pass the
gradient back to the seed but receive none themselves, and BatchNorm running statistics of
that pass are the seed path's own (:meth:`MorphogeneticModel.seed_path_statistics`), so the
host never learns from the seed before BLENDING. The seed thus minimises the loss of the model
it will join — a well-posed objective, bounded below — instead of the straight-through
first-order term ∂L/∂h·s, which is unbounded below.

Measured on ``shapes`` (``benchmarks/growth_training_objective.py``, docs/growth.md section 2: a
``conv_light`` seed in ``block2`` kept in TRAINING for 22 epochs, three seeds): under the
straight-through objective its gain over the no-seed path fell with training time, to −44.4
points on average over the last five epochs (its output scale grows every epoch); under
feedback it stayed between −1 and +1.5 points (−0.03 on average at the end). A seed learning
against a host that has not adapted to it gains little on its own, which is why the CNN's G2
blends any seed that is not measurably harmful. The extra cost is one forward and backward of
the suffix per TRAINING seed per step (counted in the growth study's compute).

The hot loop never calls ``.item()`` (the loss is summed as a tensor, the gradient ratios are
EMA tensors); with a :class:`SafetyGovernor` there is exactly one sync per step, its finiteness
check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog
import torch
from attrs import field, frozen
from torch import Tensor, nn

from esper_core.contracts.events import GovernorRollback
from esper_core.contracts.stages import LIVE_STAGES, SeedStage
from esper_core.errors import ConfigError
from esper_core.kasmina.governor import SafetyGovernor
from esper_core.kasmina.gradients import group_grad_norms
from esper_core.kasmina.model import MorphogeneticModel
from esper_core.kasmina.optimizers import adam, sgd
from esper_core.kasmina.slot import TRAINED_STAGES, SeedSlot

logger = structlog.get_logger(__name__)

OPTIMIZERS = ("adamw", "sgd")
SGD_MOMENTUM = 0.9


@frozen(kw_only=True)
class TrainStats:
    """One training epoch: mean loss over the steps taken, steps taken, rollbacks."""

    loss: float
    steps: int
    rollbacks: tuple[GovernorRollback, ...] = field(factory=tuple, converter=tuple[GovernorRollback, ...])

    @property
    def skipped(self) -> int:
        return len(self.rollbacks)


class SeedTrainer:
    """Per-seed optimizers, a separate host optimizer, and an optional safety governor."""

    def __init__(
        self,
        model: MorphogeneticModel,
        *,
        host_lr: float,
        seed_lr: float,
        weight_decay: float = 0.0,
        optimizer: str = "adamw",
        governor: SafetyGovernor | None = None,
    ) -> None:
        if optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        options = (("host_lr", host_lr), ("seed_lr", seed_lr), ("weight_decay", weight_decay))
        for name, value in options:
            if not value >= 0:
                raise ConfigError(f"{name} must be ≥ 0, got {value!r}")
        self.model = model
        self.host_lr = host_lr
        self.seed_lr = seed_lr
        self.weight_decay = weight_decay
        self.optimizer_name = optimizer
        self.governor = governor
        self.host_optimizer = self._make(model.host_parameters(), host_lr)
        self.seed_optimizers: dict[str, torch.optim.Optimizer] = {}
        self._seed_modules: dict[str, nn.Module] = {}
        self.sync()

    def _make(self, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        # The fused kernels update every tensor in one call: for the small hosts Esper grows the
        # per-tensor loop of the default implementation costs more than the arithmetic (AdamW
        # on the default CNN host's 11 tensors: 307 µs → 73 µs a step on one CPU thread).
        # Where they apply, Esper's fused classes run the same kernels without importing
        # torch._dynamo (see esper_core.kasmina.optimizers); elsewhere torch picks.
        if self.optimizer_name == "sgd":
            return sgd(params, lr=lr, momentum=SGD_MOMENTUM, weight_decay=self.weight_decay)
        return adam(params, lr=lr, decoupled=True, weight_decay=self.weight_decay)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.host_optimizer, *self.seed_optimizers.values()]

    def sync(self) -> None:
        """Match the optimizers to the slots: new seeds get one, culled seeds lose theirs,
        fossilized seeds move into the host optimizer."""
        in_host = {id(p) for g in self.host_optimizer.param_groups for p in g["params"]}
        for slot in self.model.all_slots():
            name, seed = slot.name, slot.seed
            current = self.seed_optimizers.get(name)
            if seed is not None and slot.stage in LIVE_STAGES:
                if current is None or self._seed_modules.get(name) is not seed:
                    self.seed_optimizers[name] = self._make(list(seed.parameters()), self.seed_lr)
                    self._seed_modules[name] = seed
                continue
            if seed is not None and slot.stage is SeedStage.FOSSILIZED:
                params = [p for p in seed.parameters() if id(p) not in in_host]
                if params:
                    self.host_optimizer.add_param_group({"params": params, "lr": self.host_lr})
                    if current is not None and self._seed_modules.get(name) is seed:
                        for p in params:  # the moments are lr-independent: carry them over
                            if p in current.state:
                                self.host_optimizer.state[p] = current.state[p]
            self.seed_optimizers.pop(name, None)
            self._seed_modules.pop(name, None)

    def state_dict(self) -> dict[str, Any]:
        """Every optimizer's state, plus the host optimizer's parameter groups by parameter name
        (fossilized seeds join it as extra groups, in the order they fossilized)."""
        names = {id(p): n for n, p in self.model.named_parameters()}
        return {
            "host": self.host_optimizer.state_dict(),
            "host_groups": [[names[id(p)] for p in g["params"]] for g in self.host_optimizer.param_groups],
            "seeds": {name: opt.state_dict() for name, opt in self.seed_optimizers.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` onto a model whose architecture and weights are already
        restored: the host optimizer is rebuilt with the saved groups, seeds get theirs."""
        params = dict(self.model.named_parameters())
        groups = [[params[n] for n in names] for names in state["host_groups"]]
        host = self._make(groups[0], self.host_lr)
        for group in groups[1:]:
            host.add_param_group({"params": group, "lr": self.host_lr})
        host.load_state_dict(state["host"])
        self.host_optimizer = host
        self.seed_optimizers, self._seed_modules = {}, {}
        # Saved between a decision and the next epoch's sync, a seed optimizer may belong to a
        # seed fossilized (its moments move into the host optimizer) or culled since: restore
        # every one whose seed still exists and leave the rest to the next epoch's sync(), as
        # in the uninterrupted run (syncing here would, e.g., give a just-fossilized seed's
        # group this epoch's scheduled lr, which the next epoch's lr update has already passed).
        for name, saved in state["seeds"].items():
            seed = self.model.slot(name).seed
            if seed is None:
                continue
            optimizer = self._make(list(seed.parameters()), self.seed_lr)
            optimizer.load_state_dict(saved)
            self.seed_optimizers[name], self._seed_modules[name] = optimizer, seed

    def _feedback_slots(self, trained: list[SeedSlot]) -> tuple[list[SeedSlot], dict[str, int]]:
        """The TRAINING seeds trained with feedback and their injection points."""
        feedback = [s for s in trained if s.stage is SeedStage.TRAINING and not s.straight_through]
        return feedback, {s.name: self.model.point_index(s) for s in feedback}

    def _feedback_step(self, feedback: list[SeedSlot], points: Mapping[str, int],
                       seed_params: Mapping[str | None, list[nn.Parameter]], cache: list[Tensor],
                       y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """Give every feedback-trained seed the gradient of the loss with it switched in; the
        host's parameters, gradients and statistics are left untouched. Returns the summed
        losses (detached) for the governor's finiteness check."""
        model = self.model
        total = torch.zeros((), device=y.device)
        for slot in feedback:
            p = points[slot.name]
            params = seed_params[slot.name]
            with model.seed_path_statistics(slot), model.force_alpha(slot.name, 1.0):
                seed_loss = loss_fn(model.run_from(cache[p].detach(), p), y)
                grads = torch.autograd.grad(seed_loss, params, allow_unused=True)
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
            total = total + seed_loss.detach()
        return total

    def _trained_params(self) -> tuple[list[SeedSlot], dict[str | None, list[nn.Parameter]]]:
        trained = [s for s in self.model.all_slots()
                   if s.stage in TRAINED_STAGES and s.seed is not None]
        params: dict[str | None, list[nn.Parameter]] = {
            s.name: list(s.seed.parameters()) for s in trained}  # type: ignore[union-attr]
        return trained, params

    def train_epoch(
        self,
        batches: Iterable[tuple[Tensor, Tensor]],
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        *,
        epoch: int,
    ) -> TrainStats:
        """Train one epoch; returns the mean loss of the steps taken and any rollbacks."""
        model, governor = self.model, self.governor
        self.sync()
        model.train()
        if governor is not None:
            governor.snapshot(self.optimizers())
        host_params = model.host_parameters()
        n_host = sum(p.numel() for p in host_params)
        trained, seed_params = self._trained_params()
        device, _ = model.device_and_dtype()
        loss_sum = torch.zeros((), device=device)
        norms: dict[str | None, Tensor] = {}
        steps = 0
        rollbacks: list[GovernorRollback] = []
        feedback, points = self._feedback_slots(trained)
        for index, (x, y) in enumerate(batches):
            for opt in self.optimizers():
                opt.zero_grad(set_to_none=True)
            if feedback:
                # Seeds first, then the host's backward: whatever watches the end of the
                # backward (gradient-health observers) then sees every gradient of the step.
                cache: list[Tensor] = []
                loss = loss_fn(model(x, cache=cache), y)
                feedback_loss = self._feedback_step(feedback, points, seed_params, cache, y, loss_fn)
            else:
                loss = loss_fn(model(x), y)
            loss.backward()
            tracked = [s for s in trained if s.stage is SeedStage.TRAINING]
            if governor is not None or tracked:
                norms = group_grad_norms({None: host_params, **seed_params})
            checked = loss.detach() if not feedback else loss.detach() + feedback_loss
            if governor is not None and not governor.check(checked, norms):
                rollbacks.append(governor.rollback(epoch=epoch, step=index,
                                                   cause="non-finite loss, gradient or parameter"))
                for opt in self.optimizers():
                    opt.zero_grad(set_to_none=True)
                self.sync()
                trained, seed_params = self._trained_params()
                feedback, points = self._feedback_slots(trained)
                governor.snapshot(self.optimizers())
                continue
            self.host_optimizer.step()
            for s in trained:
                self.seed_optimizers[s.name].step()
            for s in tracked:
                n_seed = sum(p.numel() for p in seed_params[s.name])
                s.state.gradient.update(norms[s.name], norms[None], n_seed, n_host)
            loss_sum += loss.detach()
            steps += 1
        if governor is not None and not governor.finish_epoch(
                [*host_params, *(p for ps in seed_params.values() for p in ps)]):
            rollbacks.append(governor.rollback(epoch=epoch, step=steps,
                                               cause="non-finite parameter after the last step"))
            self.sync()
            # The epoch's steps were undone with the snapshot; report the epoch as lost.
            steps = 0
            loss_sum.zero_()
        for s in trained:  # one sync per epoch: the last step's seed gradient norm
            s.state.last_grad_norm = float(norms[s.name]) if s.name in norms else None
        for opt in self.optimizers():
            opt.zero_grad(set_to_none=True)
        model.sync_gradient_ratios()
        mean = float(loss_sum.item()) / steps if steps else float("nan")
        return TrainStats(loss=mean, steps=steps, rollbacks=rollbacks)
