"""A read-only view of each seed slot, for observers (``ObserverSpec``).

An observer is handed the episode's model; it reads the seeds through
``model.seed_views()`` — frozen records the model builds on each call — instead of walking the
engine's private slot state, which may change shape between releases. Torch-free: tensors
appear only for type checkers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from attrs import field, frozen

from esper_core.contracts.stages import LIVE_STAGES, SeedStage

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from torch import nn


def _tensors(value: Iterable[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return tuple(value)


@frozen(kw_only=True)
class SeedView:
    """One slot as it stands when :meth:`ObservedModel.seed_views` is called."""

    slot: str
    stage: SeedStage = field(converter=SeedStage)
    #: ``topology:name`` of the seed's blueprint; None when the slot holds no seed
    blueprint: str | None = None
    #: the blend weight the forward uses (1 when fossilized, 0 when not blended)
    alpha: float = 0.0
    #: norm of the seed's gradient at the last training step of the last epoch (None: not measured)
    last_grad_norm: float | None = None
    #: the live seed's parameters, by reference (empty when the slot has no live seed); read them,
    #: never change them
    parameters: tuple[torch.Tensor, ...] = field(default=(), converter=_tensors, eq=False, repr=False)

    @property
    def live(self) -> bool:
        return self.stage in LIVE_STAGES


@runtime_checkable
class ObservedModel(Protocol):
    """The episode's model as an observer may use it: a ``torch.nn.Module`` (parameters and
    forward hooks, for gradient statistics) plus the seed views."""

    def seed_views(self) -> tuple[SeedView, ...]:
        """One view per slot, in slot order."""

    def parameters(self) -> Iterator[nn.Parameter]: ...

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> Any: ...
