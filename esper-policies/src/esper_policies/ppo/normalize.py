"""Running statistics for observation normalisation and reward scaling.

Observations: ``(x − mean) / sqrt(var + ε)`` clipped to ±10, with mean and variance updated
from every batch collected during training and frozen afterwards (CleanRL's
``NormalizeObservation``). Rewards: divided by the running standard deviation of the discounted
return, not re-centred (Engstrom et al. 2020, "Implementation Matters in Deep Policy Gradients",
ICLR; gym's ``NormalizeReward``). Means and variances merge batches with the parallel algorithm
of Chan, Golub and LeVeque (1979).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

EPSILON = 1e-8
CLIP = 10.0


class RunningMeanStd:
    """Mean and variance of a stream of ``(N, *shape)`` batches."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64)
        self.var = torch.ones(shape, dtype=torch.float64)
        self.count = EPSILON

    def update(self, batch: Tensor) -> None:
        batch = batch.detach().to(torch.float64)
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean = batch.mean(0)
        batch_var = batch.var(0, unbiased=False)
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.var = m2 / total
        self.count = total

    def normalize(self, x: Tensor) -> Tensor:
        out = (x - self.mean.to(x.dtype)) / torch.sqrt(self.var.to(x.dtype) + EPSILON)
        return out.clamp(-CLIP, CLIP)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = state["mean"].to(torch.float64)
        self.var = state["var"].to(torch.float64)
        self.count = float(state["count"])


class ReturnScaler:
    """Scales rewards by the running std of each environment's discounted return."""

    def __init__(self, n_envs: int, gamma: float) -> None:
        self.gamma = gamma
        self.returns = torch.zeros(n_envs, dtype=torch.float64)
        self.stats = RunningMeanStd()

    def reset(self) -> None:
        """A new episode in every environment."""
        self.returns.zero_()

    def scale(self, rewards: Tensor) -> Tensor:
        self.returns = self.returns * self.gamma + rewards.to(torch.float64)
        self.stats.update(self.returns)
        return (rewards / torch.sqrt(self.stats.var.to(rewards.dtype) + EPSILON)).clamp(-CLIP, CLIP)

    def state_dict(self) -> dict[str, Any]:
        return self.stats.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats.load_state_dict(state)
