"""The parameter-normalised gradient ratio behind the G2 gate (DESIGN §4).

``ratio = (‖g_seed‖/√n_seed) / (‖g_host‖/√n_host)``: how hard the seed is learning relative
to the host, per parameter, so a large host does not drown a small seed. Edge cases follow the
seed-slot review: the ratio is 0 when ‖g_host‖ < 1e-8 (nothing to compare against) and is
clamped to 10 (a near-silent host must not produce astronomically large readings).

The per-step ratios are smoothed by an exponential moving average (decay 0.9) with Adam's bias
correction ``ema_t / (1 − βᵗ)`` (Kingma & Ba 2015, §3), so the first readings are not biased
towards the zero the average starts from. Everything per step stays a device tensor; one
``.item()`` per epoch (:meth:`GradientRatioTracker.sync`) reads it out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

EMA_DECAY = 0.9
HOST_NORM_EPSILON = 1e-8
RATIO_CLAMP = 10.0


def grad_norm(params: Iterable[torch.nn.Parameter]) -> Tensor | None:
    """The L2 norm of the gradients of ``params`` as a 0-dim tensor (no sync); None if no grads."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    norms = torch._foreach_norm(grads)
    return torch.linalg.vector_norm(torch.stack(norms))


def gradient_ratio(seed_norm: Tensor, host_norm: Tensor, n_seed: int, n_host: int) -> Tensor:
    """One step's clamped, parameter-normalised ratio as a 0-dim tensor (no sync)."""
    seed_scaled = seed_norm / math.sqrt(max(1, n_seed))
    host_scaled = host_norm.clamp_min(HOST_NORM_EPSILON) / math.sqrt(max(1, n_host))
    ratio = (seed_scaled / host_scaled).clamp(max=RATIO_CLAMP)
    return torch.where(host_norm < HOST_NORM_EPSILON, torch.zeros_like(ratio), ratio)


class GradientRatioTracker:
    """Bias-corrected EMA of the per-step gradient ratio of one seed."""

    def __init__(self, decay: float = EMA_DECAY) -> None:
        self.decay = decay
        self.steps = 0
        self.value = 0.0
        self._ema: Tensor | None = None

    def update(self, seed_norm: Tensor, host_norm: Tensor, n_seed: int, n_host: int) -> None:
        ratio = gradient_ratio(seed_norm, host_norm, n_seed, n_host).detach()
        if self._ema is None:
            self._ema = torch.zeros_like(ratio)
        self._ema.mul_(self.decay).add_(ratio, alpha=1.0 - self.decay)
        self.steps += 1

    def sync(self) -> float:
        """Read the bias-corrected average out of the device (once per epoch) and return it."""
        if self._ema is not None and self.steps:
            self.value = float(self._ema.item()) / (1.0 - self.decay**self.steps)
        return self.value


def group_grad_norms(
    groups: dict[str | None, list[torch.nn.Parameter]],
) -> dict[str | None, Tensor]:
    """Gradient L2 norm of each parameter group, from one fused ``_foreach_norm`` (no sync).

    A group without gradients gets a zero norm. The trainer uses these both for the gradient
    ratio and for the governor's finiteness check, so the norms are computed once per step.
    """
    grads: list[Tensor] = []
    bounds: list[tuple[str | None, int, int]] = []
    for key, params in groups.items():
        start = len(grads)
        grads.extend(p.grad for p in params if p.grad is not None)
        bounds.append((key, start, len(grads)))
    norms = torch._foreach_norm(grads) if grads else []
    out: dict[str | None, Tensor] = {}
    for key, start, stop in bounds:
        if stop > start:
            out[key] = torch.linalg.vector_norm(torch.stack(list(norms[start:stop])))
        else:
            out[key] = torch.zeros(())
    return out
