"""The PPO update: clipped surrogate, clipped value loss, entropy bonus, several epochs of
minibatches (Schulman et al. 2017, "Proximal Policy Optimization Algorithms",
arXiv:1707.06347; implementation details as in CleanRL's ``ppo.py`` — Huang et al. 2022,
"The 37 Implementation Details of Proximal Policy Optimization", ICLR blog track).

Per minibatch:

* advantages are normalised to zero mean and unit std within the minibatch;
* policy loss ``max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε))`` with ``ρ = π_new(a|s) / π_old(a|s)``;
* value loss ``½·max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²)`` (or the unclipped
  square), weighted by ``value_coef``;
* minus ``entropy_coef`` × the summed entropy of the heads ``entropy_heads`` names (all three
  by default);
* with ``bc_anchor`` > 0, plus ``bc_anchor`` × ``KL(π_cloned ‖ π)`` on the cloned heads
  (:func:`anchor_kl`);
* the global gradient norm is clipped to ``max_grad_norm`` before the Adam step.

After each epoch over the data, the update stops early once the approximate KL divergence
``E[(ρ − 1) − log ρ]`` (Schulman's low-variance, always-positive estimator) exceeds
``target_kl``. An MLP samples minibatches of single transitions; an LSTM samples minibatches of
whole environment sequences, replayed from the episode's first step so the recurrent state is
rebuilt exactly as it was when acting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from attrs import frozen
from torch import Tensor

from esper_policies.encoding import MaskBatch
from esper_policies.ppo.config import ACTION_FACTORS, PPOConfig
from esper_policies.ppo.network import ActionOutput, ActorCritic


@frozen
class Rollout:
    """One round of experience, every tensor ``(T, N, ...)`` (time, environment)."""

    obs: Tensor
    masks: MaskBatch
    actions: Tensor
    log_probs: Tensor
    values: Tensor
    advantages: Tensor
    returns: Tensor
    #: the cloned policy's log-probability rows per head at the same states and actions
    #: (``(T, N, K)`` each, see :attr:`ActionOutput.head_log_probs`); None without ``bc_anchor``
    reference: tuple[Tensor, Tensor, Tensor] | None = None


def explained_variance(predicted: Tensor, target: Tensor) -> float:
    """``1 − Var(target − predicted) / Var(target)``: 1 is perfect, ≤ 0 is no better than a constant."""
    var = target.var(unbiased=False)
    if var.item() == 0:
        return float("nan")
    return float(1 - (target - predicted).var(unbiased=False) / var)


def anchor_kl(out: ActionOutput, reference: Sequence[Tensor], heads: Sequence[int]) -> Tensor:
    """``KL(π_ref ‖ π)`` of each of ``heads`` where it took part in the action, summed over the
    heads and averaged over the batch. The slot and blueprint heads are compared given the op and
    slot the acting policy chose, the same rows both policies' log-probabilities of it use."""
    total = torch.zeros(())
    for head in heads:
        ref = reference[head]
        p = ref.exp()
        # Disallowed entries have probability 0 under both: they add nothing, not 0 × (huge − huge).
        kl = torch.where(p > 0, p * (ref - out.head_log_probs[head]), 0.0).sum(-1)
        total = total + torch.where(out.applies[:, head], kl, 0.0).mean()
    return total


def _minibatches(rollout: Rollout, n: int, recurrent: bool, generator: torch.Generator) -> list[Tensor]:
    size = rollout.obs.shape[1] if recurrent else rollout.obs.shape[0] * rollout.obs.shape[1]
    order = torch.randperm(size, generator=generator)
    return [chunk for chunk in order.chunk(min(n, size)) if len(chunk)]


def _evaluate(network: ActorCritic, rollout: Rollout, idx: Tensor, recurrent: bool) -> tuple[Any, ...]:
    """New log-probs, entropies and values of minibatch ``idx``, with the old statistics."""
    if recurrent:
        features, _ = network.features(rollout.obs[:, idx])
        take = lambda t: t[:, idx].flatten(0, 1)  # noqa: E731 - sequences of the chosen envs
        masks = rollout.masks.index((slice(None), idx)).flatten()
        features = features.flatten(0, 1)
    else:
        flat = lambda t: t.flatten(0, 1)[idx]  # noqa: E731
        take = flat
        masks = rollout.masks.flatten().index(idx)
        features, _ = network.features(take(rollout.obs))
    out = network.heads(features, masks, take(rollout.actions))
    reference = None if rollout.reference is None else tuple(take(r) for r in rollout.reference)
    return (out, take(rollout.log_probs), take(rollout.values), take(rollout.advantages), take(rollout.returns),
            reference)


def ppo_update(network: ActorCritic, optimizer: torch.optim.Optimizer, rollout: Rollout, *,
               config: PPOConfig, entropy_coef: float, generator: torch.Generator) -> dict[str, float]:
    """Run the update epochs on ``rollout``; return the last epoch's mean statistics."""
    recurrent = network.lstm is not None
    bonus_heads = [ACTION_FACTORS.index(h) for h in config.entropy_heads]
    anchored_heads = [ACTION_FACTORS.index(h) for h in config.bc_heads]
    epochs_run = 0
    stats: dict[str, list[float]] = {}
    for _ in range(config.update_epochs):
        stats = {}
        epochs_run += 1
        for idx in _minibatches(rollout, config.minibatches, recurrent, generator):
            out, old_logp, old_values, adv, returns, reference = _evaluate(network, rollout, idx, recurrent)
            log_ratio = out.log_prob - old_logp
            ratio = log_ratio.exp()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - log_ratio).mean()
                clip_fraction = ((ratio - 1).abs() > config.clip).float().mean()
            if adv.numel() > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - config.clip, 1 + config.clip)).mean()
            if config.clip_value:
                clipped = old_values + (out.value - old_values).clamp(-config.clip, config.clip)
                value_loss = 0.5 * torch.max((out.value - returns).square(), (clipped - returns).square()).mean()
            else:
                value_loss = 0.5 * (out.value - returns).square().mean()
            head_entropy = out.entropy.mean(0)
            entropy = head_entropy.sum()
            bonus = head_entropy[bonus_heads].sum()
            loss = policy_loss - entropy_coef * bonus + config.value_coef * value_loss
            extra: tuple[tuple[str, Tensor], ...] = ()
            if config.bc_anchor > 0 and reference is not None:
                kl_to_cloned = anchor_kl(out, reference, anchored_heads)
                loss = loss + config.bc_anchor * kl_to_cloned
                extra = (("kl_to_cloned", kl_to_cloned),)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(network.parameters(), config.max_grad_norm)
            optimizer.step()
            for key, value in (("policy_loss", policy_loss), ("value_loss", value_loss), ("entropy", entropy),
                               ("approx_kl", approx_kl), ("clip_fraction", clip_fraction),
                               ("grad_norm", grad_norm), *extra,
                               *((f"entropy_{h}", e) for h, e in zip(ACTION_FACTORS, head_entropy, strict=True))):
                stats.setdefault(key, []).append(float(value.detach()))
        if config.target_kl is not None and sum(stats["approx_kl"]) / len(stats["approx_kl"]) > config.target_kl:
            break
    metrics = {key: sum(values) / len(values) for key, values in stats.items()}
    metrics["update_epochs_run"] = float(epochs_run)
    metrics["explained_variance"] = explained_variance(rollout.values.flatten(), rollout.returns.flatten())
    return metrics
