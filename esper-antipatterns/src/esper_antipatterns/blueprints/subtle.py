"""Subtle degraders (indices 24–26): look reasonable, slowly poison the model."""

from __future__ import annotations

import torch
from torch import nn

from esper_antipatterns.blueprints._layers import LayerScale
from esper_antipatterns.estimates import MOMENTUM, NOISE_SIGMA_INIT, bottleneck_hidden
from esper_core.sdk import check_width


class CorrelatedNoise(nn.Module):
    """Index 24: adds Gaussian noise that is the same for every sample of the batch.

    Why it is bad: one ``(1, C, 1, 1)`` noise vector is drawn per forward pass and broadcast
    over the batch, so the noise does not average out over a batch — every sample is shifted
    the same way. Batch statistics become biased and the minibatch gradient is no longer an
    unbiased average of independent per-sample gradients. Loss curves look healthy while the
    accuracy plateaus below what the host could reach. Like dropout, noise is injected in
    training mode only, so evaluation stays deterministic.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.sigma = nn.Parameter(torch.tensor(NOISE_SIGMA_INIT))
        self.scale = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            # Drawn ONCE per pass, batch dimension 1: the defining defect.
            noise = torch.randn([1, x.shape[1], 1, 1], dtype=x.dtype, device=x.device)
            x = x + self.sigma * noise
        return self.scale(x)


class AsymmetricBottleneck(nn.Module):
    """Index 25: 1×1 conv down by 8×, ReLU, a separately initialised 1×1 conv up, no skip.

    Why it is bad: every output pixel lies in a ``C // 8``-dimensional subspace, and without
    a residual path the module cannot represent the identity — the rest of the host's
    features are lost. The expansion is not the transpose of the compression, so there is not
    even a symmetric encode/decode to fall back on. Representations drift and get lossier.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        hidden = bottleneck_hidden(width)
        self.down = nn.Conv2d(width, hidden, kernel_size=1)
        self.act = nn.ReLU()
        # Independent default init, deliberately NOT tied to down.weight.T.
        self.up = nn.Conv2d(hidden, width, kernel_size=1)
        self.scale = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.up(self.act(self.down(x))))


class MomentumDampener(nn.Module):
    """Index 26: blends activations with a 0.99-momentum running average of past batches.

    Why it is bad: the output is ``EMA + γ·(x − EMA)`` with ``γ`` starting at ``1 − 0.99``,
    i.e. seed 000's ``0.99·EMA + 0.01·x``: the gradient through the module is scaled by 0.01
    (a gradient bottleneck), and the EMA buffer makes each output depend on the batches seen
    before and on the other samples of the current batch. Training becomes order-dependent
    and non-reproducible. The EMA is a per-channel buffer updated in training mode only.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        check_width(width)
        self.momentum = MOMENTUM
        self.register_buffer("ema", torch.zeros(1, width, 1, 1))
        self.ema: torch.Tensor  # declared for mypy here: TorchScript rejects a class-level annotation
        self.scale = LayerScale(width, init=1.0 - MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                batch_mean = x.detach().mean(dim=[0, 2, 3], keepdim=True).to(self.ema.dtype)
                self.ema.mul_(self.momentum).add_(batch_mean, alpha=1.0 - self.momentum)
        ema = self.ema.detach().to(x.dtype)
        return ema + self.scale(x - ema)
