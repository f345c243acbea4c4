"""The safety governor: nothing non-finite reaches the host's weights or optimizer state.

Around every optimizer step the trainer asks :meth:`SafetyGovernor.check` whether the loss and
the gradients are finite. The check is one fused reduction: the per-group gradient norms the
trainer already computes (``torch._foreach_norm``) are stacked with the loss, squared, and
tested with ``isfinite`` in a single ``.item()``. Squaring matters: a finite gradient whose
square overflows float32 would turn Adam's second moment into ``inf``, so it counts as
non-finite too. That one host sync per step is deliberate: the step must be skipped *before*
``optimizer.step()`` mutates any state, and deciding which seed to cull is Python control flow
(``torch.amp.GradScaler`` makes the same trade with its ``found_inf`` check).

Parameters are checked once, at the end of the epoch. A step cannot make a parameter
non-finite without the next step's loss (or the epoch-end check, for a parameter the loss does
not use) showing it, and a rollback returns to the start of the epoch either way, so checking
after every step — a ``_foreach_norm`` over every parameter, as costly as the gradient check —
bought nothing but an earlier step number in the report (measured in ``benchmarks/bench_engine.py``).

On a failure the governor restores the last good snapshot (parameters, buffers such as
BatchNorm statistics, and every optimizer's state, bit for bit), culls the seed responsible
(the live seed with a non-finite output; else one with non-finite gradients or parameters; if
it stays unclear, the most recently germinated live seed), emits ``GovernorRollback`` and
counts it. Snapshots are refreshed once per epoch, at the start of each training epoch (that
is, after every successful epoch), into preallocated buffers with ``torch._foreach_copy_``; a
rollback therefore returns to the start of the current epoch. The cost of a snapshot is
measured against a training step in ``benchmarks/bench_kasmina.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import structlog
import torch
from attrs import frozen
from torch import Tensor, nn

from esper_core.contracts.events import GovernorRollback
from esper_core.contracts.stages import LIVE_STAGES
from esper_core.kasmina.distributed import agree, agree_all
from esper_core.kasmina.model import MorphogeneticModel
from esper_core.kasmina.slot import SeedSlot

logger = structlog.get_logger(__name__)


@frozen
class _OptimizerEntry:
    optimizer: torch.optim.Optimizer
    param: nn.Parameter
    #: state key → index into the snapshot's tensor lists.
    tensors: Mapping[str, int]
    #: state key → a plain (non-tensor) value, kept as is.
    values: Mapping[str, object]

    @property
    def empty(self) -> bool:
        return not self.tensors and not self.values


def _all_finite(values: Sequence[Tensor]) -> bool:
    """Whether every 0-dim value is finite: one sum and one sync. A NaN or ±Inf anywhere makes
    the sum non-finite; the values are norms (≥ 0) and a loss, so finite values cannot cancel
    an Inf, and only a sum beyond float32's range (≈ 3e38) would be a false alarm."""
    total = torch.stack([v.detach().reshape(()) for v in values]).sum()
    return bool(torch.isfinite(total))


class SafetyGovernor:
    """Rolls the model and its optimizers back when training produces a non-finite value."""

    def __init__(self, model: MorphogeneticModel) -> None:
        self.model = model
        self.rollback_count = 0
        self._sources: list[Tensor] = []
        self._buffers: list[Tensor] = []
        self._signature: tuple[tuple[int, tuple[int, ...], torch.dtype], ...] = ()
        self._optim: list[_OptimizerEntry] = []
        self._optimizers: list[torch.optim.Optimizer] = []

    # ------------------------------------------------------------------ snapshot
    def snapshot(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        """Copy parameters, buffers and optimizer states into the preallocated buffers."""
        self._optimizers = list(optimizers)
        sources: list[Tensor] = [p.detach() for p in self.model.parameters()]
        sources.extend(b for b in self.model.buffers())
        entries: list[_OptimizerEntry] = []
        for opt in self._optimizers:
            for group in opt.param_groups:
                for p in group["params"]:
                    tensors: dict[str, int] = {}
                    values: dict[str, object] = {}
                    for key, value in opt.state.get(p, {}).items():
                        if isinstance(value, Tensor):
                            tensors[key] = len(sources)
                            sources.append(value)
                        else:
                            values[key] = value
                    entries.append(_OptimizerEntry(opt, p, tensors, values))
        signature = tuple((id(t), tuple(t.shape), t.dtype) for t in sources)
        if signature != self._signature:
            # Structure changed (first step created optimizer state, a seed came or went):
            # allocate once; later snapshots only copy.
            self._buffers = [torch.empty_like(t) for t in sources]
            self._signature = signature
        self._sources = sources
        self._optim = entries
        if sources:
            torch._foreach_copy_(self._buffers, sources)

    def restore(self) -> None:
        """Put the snapshot back, bit for bit; optimizer state created since is dropped."""
        if self._sources:
            torch._foreach_copy_(self._sources, self._buffers)
        saved = {(id(e.optimizer), id(e.param)): e for e in self._optim}
        for opt in self._optimizers:
            for group in opt.param_groups:
                for p in group["params"]:
                    entry = saved.get((id(opt), id(p)))
                    if entry is None or entry.empty:
                        opt.state.pop(p, None)
                        continue
                    state = opt.state.setdefault(p, {})
                    for key in list(state):
                        if key not in entry.tensors and key not in entry.values:
                            del state[key]
                    for key, index in entry.tensors.items():
                        # The live tensor was restored in place above; only a state tensor
                        # that was replaced since the snapshot needs a fresh copy.
                        if state.get(key) is not self._sources[index]:
                            state[key] = self._buffers[index].clone()
                    state.update(entry.values)

    # ------------------------------------------------------------------ checks
    def check(self, loss: Tensor, grad_norms: Mapping[str | None, Tensor]) -> bool:
        """True when the loss and the gradients are finite (one sync)."""
        return agree(_all_finite([loss, *grad_norms.values()]))

    def finish_epoch(self, params: Sequence[Tensor]) -> bool:
        """True when every trained parameter is finite after the epoch's last step (one sync)."""
        if not params:
            return agree(True)
        with torch.no_grad():  # cheaper than detaching every parameter
            return agree(_all_finite([torch.stack(torch._foreach_norm(list(params))).sum()]))

    # ------------------------------------------------------------------ rollback
    def rollback(self, *, epoch: int, step: int, cause: str) -> GovernorRollback:
        """Restore the snapshot, cull the responsible seed, emit and count the rollback."""
        culprit = self._culprit()
        self.restore()
        name = culprit.name if culprit is not None else None
        if culprit is not None:
            self.model.cull(culprit.name, epoch=epoch, reason=f"governor rollback: {cause}")
        self.rollback_count += 1
        event = GovernorRollback(epoch=epoch, slot=name, cause=cause, step=step)
        self.model.emit(event)
        logger.warning("governor rollback", epoch=epoch, step=step, slot=name, cause=cause)
        return event

    def _culprit(self) -> SeedSlot | None:
        live = [s for s in self.model.all_slots() if s.stage in LIVE_STAGES and s.seed is not None]
        if not live:
            return None
        bad_output = agree_all([not _output_bad(s) for s in live])
        bad_values = agree_all([not _values_bad(s) for s in live])
        by_recency = sorted(range(len(live)), key=lambda i: (live[i].state.germinated_epoch or 0,
                                                             live[i].index))
        for flags in (bad_output, bad_values):
            suspects = [i for i in by_recency if not flags[i]]
            if suspects:
                return live[suspects[-1]]
        return live[by_recency[-1]]


def _output_bad(slot: SeedSlot) -> bool:
    out = slot.state.last_seed_output
    return out is not None and not bool(torch.isfinite(out.detach()).all())


def _values_bad(slot: SeedSlot) -> bool:
    assert slot.seed is not None
    values = []
    for p in slot.seed.parameters():
        values.append(torch.linalg.vector_norm(p.detach()))
        if p.grad is not None:
            values.append(torch.linalg.vector_norm(p.grad))
    return bool(values) and not _all_finite(values)

