"""Acting on IQL's critic among the actions its actor supports: discrete BCQ's rule.

IQL fits its actor by advantage-weighted regression: cloning of the recorded actions weighted by
``1(Q − V > 0)`` (the default) or ``exp(β·(Q − V))``. Either way it stays close to the data: with
β 3 the exponential weights stay near 1 (docs/learned_controllers.md: a mean of 0.98 to 1.0 on
the default task), and with the indicator the actor still ends up fitting nearly every recorded
action, so the actor is close to a clone of the data's behaviour and the critic hardly decides
anything: where the critic ranks an action above the
one the actor prefers, the actor still takes its own.

Discrete BCQ (Fujimoto, Conti, Ghavamzadeh and Pineau 2019, "Benchmarking Batch Deep
Reinforcement Learning Algorithms", arXiv:1910.01708) acts instead with

    a = argmax over {a : π(a | s) ≥ τ · max_a' π(a' | s)} of Q(s, a)

where π models the data's behaviour. The critic chooses, but only among the actions the data
makes probable enough in this state for the critic to have been trained on them: τ = 1 keeps
only the actor's most probable action, τ → 0 is a greedy critic over every allowed action,
which an offline critic was never trained for. Here π is IQL's own actor (near a clone, as
above) and Q is the smaller of the twin critics, the same pessimistic estimate IQL's losses use.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from esper_core.contracts.decisions import Op
from esper_policies.encoding import MaskBatch
from esper_policies.iql.update import TwinQ
from esper_policies.ppo.network import ActorCritic


def allowed_actions(masks: MaskBatch) -> Tensor:
    """Every joint ``(op, slot, blueprint)`` action a one-row mask allows, ``(K, 3)``; WAIT first.
    The slot of WAIT and the blueprint of anything but GERMINATE are 0, as in recorded data."""
    rows = [(int(Op.WAIT), 0, 0)]
    blueprints = masks.blueprints[0].nonzero().flatten().tolist()
    for op in Op:
        if op is Op.WAIT or not bool(masks.ops[0, op]):
            continue
        for slot in masks.slots[0, op].nonzero().flatten().tolist():
            rows += [(int(op), slot, b) for b in blueprints] if op is Op.GERMINATE else [(int(op), slot, 0)]
    return torch.tensor(rows, dtype=torch.long)


@torch.no_grad()
def q_filtered_action(actor: ActorCritic, critic: TwinQ, obs: Tensor, features: Tensor, masks: MaskBatch, *,
                      threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """The action BCQ's rule picks for one state (``obs`` and the actor's ``features`` of it,
    ``(1, ·)``; ``masks`` one row), with the actor's probability of it and its critic value:
    ``(1, 3)``, ``(1,)``, ``(1,)``."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    candidates = allowed_actions(masks)
    k = candidates.shape[0]
    rows = torch.zeros(k, dtype=torch.long)
    log_prob = actor.heads(features.expand(k, -1), masks.index(rows), candidates).log_prob
    supported = log_prob >= log_prob.max() + math.log(threshold)
    q = torch.min(*critic(obs.expand(k, -1), candidates))
    best = int(q.masked_fill(~supported, -math.inf).argmax())
    return candidates[best:best + 1], log_prob[best:best + 1].exp(), q[best:best + 1]
