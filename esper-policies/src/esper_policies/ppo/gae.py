"""Generalised advantage estimation (Schulman et al. 2016, "High-Dimensional Continuous Control
Using Generalized Advantage Estimation", arXiv:1506.02438).

``δ_t = r_t + γ·V(s_{t+1})·(1 − terminated_t) − V(s_t)`` and
``A_t = δ_t + γλ·(1 − done_t)·A_{t+1}``, where ``done_t`` = terminated or truncated.

Truncation (an episode cut at a time limit) is *not* terminal: the value of the state it was
cut in still counts (Pardo et al. 2018, "Time Limits in Reinforcement Learning"), so δ at a
truncated step bootstraps from ``next_values``; only the accumulation stops, because the next
row of the rollout belongs to another episode. ``returns = advantages + values`` are the value
targets (CleanRL's ``ppo.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def compute_gae(rewards: Tensor, values: Tensor, next_values: Tensor, terminated: Tensor, truncated: Tensor,
                *, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Advantages and returns of a ``(T, N)`` rollout.

    ``next_values[t]`` is V(s_{t+1}), the value of the state after step ``t`` (for the last
    step of an episode: the state it ended in; ignored when terminated). ``terminated`` and
    ``truncated`` are boolean ``(T, N)``.
    """
    if not (rewards.shape == values.shape == next_values.shape == terminated.shape == truncated.shape):
        raise ValueError("rewards, values, next_values, terminated and truncated must share one (T, N) shape")
    not_terminal = (~terminated).to(values.dtype)
    carry = (~(terminated | truncated)).to(values.dtype)
    advantages = torch.zeros_like(values)
    last = torch.zeros_like(values[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_values[t] * not_terminal[t] - values[t]
        last = delta + gamma * lam * carry[t] * last
        advantages[t] = last
    return advantages, advantages + values
