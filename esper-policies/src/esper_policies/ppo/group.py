"""Group-relative advantages over environments that share an episode seed.

With ``advantage = "group"`` the environments of a round run in groups of ``group_size`` on one
episode seed (common random numbers: the same host initialisation, data order and
augmentation), so the returns inside a group differ only through what the policy did. Each
step's advantage is its discounted return-to-go less the mean return-to-go of the *other*
members of its group at the same step:

``A_{i,t} = G_{i,t} − (1 / (K − 1))·Σ_{j ≠ i} G_{j,t}``

The baseline never depends on episode ``i``'s own actions, so the policy gradient stays
unbiased (the leave-one-out baseline of Kool, van Hoof & Welling 2019, "Buy 4 REINFORCE
Samples, Get a Baseline for Free!"; the group-relative advantage of GRPO, Shao et al. 2024,
arXiv:2402.03300, which drops the critic the same way).

Why it exists, and what it measured: on ``shapes`` the one growth choice worth a point of test
accuracy (conv_heavy in block1, docs/growth_frontier_shapes.md) moves the return by about 0.2,
inside the episodes' spread. Pairing was meant to remove the part of that spread an episode
seed causes, which no critic can see. On the default task (docs/learned_shapes_group.md, 30
rounds × 8 environments, the heuristic's lifecycle cloned) the seed turned out to account for
3 % of the training returns' variance, so the pairing removed little. Yet this estimator found
conv_heavy in block1 and beat the heuristic's return (+0.55, t 4.73 over 20 held-out
episodes), where GAE with 20 rounds did not (+0.19, t 1.11). Under the goal's objective
(``sparse`` and a 904-parameter budget, 30 × 8 each; docs/learned_controllers.md, "Which
mattered") GAE found conv_heavy in block1 as well, so group advantages are not needed for
that; the two then differed in the other slots (conv_small against norm), and the
group-advantage policy was +1.06 test points above the GAE one on the same 20 held-out
episodes (t 2.67), +1.32 above the heuristic against GAE's +0.26. One training run per
estimator, so GAE stays the default.
"""

from __future__ import annotations

from torch import Tensor


def group_advantages(returns_to_go: Tensor, group_size: int) -> Tensor:
    """Leave-one-out advantages of a ``(T, N)`` rollout whose environments ``k·K … k·K + K − 1``
    (``K`` = ``group_size``) form group ``k``."""
    if returns_to_go.dim() != 2:
        raise ValueError(f"returns_to_go must be (T, N), got shape {tuple(returns_to_go.shape)}")
    steps, n = returns_to_go.shape
    if group_size < 2 or n % group_size:
        raise ValueError(f"group_size must be at least 2 and divide the {n} environments, got {group_size}")
    grouped = returns_to_go.reshape(steps, n // group_size, group_size)
    others = (grouped.sum(-1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - others).reshape(steps, n)
