"""Behaviour cloning: PPO's optional initialisation from recorded episodes (``--bc-dataset``).

Behaviour cloning is supervised imitation: fit the policy to a behaviour policy's recorded
(observation, action) pairs by maximum likelihood (Pomerleau 1991, "Efficient Training of
Artificial Neural Networks for Autonomous Navigation", Neural Computation 3(1)). Cloning a
competent policy first and then improving it with on-policy RL is the usual "BC then RL
fine-tuning" recipe (Rajeswaran et al. 2018, "Learning Complex Dexterous Manipulation with Deep
Reinforcement Learning and Demonstrations", RSS — the "BC init" baseline; AlphaStar, Vinyals
et al. 2019, supervised pre-training then RL): PPO starts from the behaviour's decisions
instead of a near-uniform policy, which on this task would need hundreds of episodes to reach
them.

* **Data.** ``esper collect`` datasets (:mod:`esper_policies.offline.dataset`). Their
  observations are the unnormalised :class:`~esper_core.contracts.observation.ObservationLayout`
  vectors of the same :class:`~esper_policies.encoding.ObservationBuilder` PPO builds, so they are
  fed to the network exactly as PPO's own are: through PPO's running observation normalisation,
  whose statistics are first updated with the training episodes' observations (PPO then keeps
  updating them). A dataset recorded with another observation schema, size, blueprint catalog,
  slot count or task is refused with the mismatch named.
* **Actor loss.** Masked cross-entropy: ``−log π(a | s)`` of the recorded factored action under
  the recorded mask (the same masked heads PPO samples from, so disallowed actions have
  probability 0 and the slot and blueprint factors count only where the op uses them).
* **Heads cloned** (``bc_heads``, all three by default). Only the chosen factors' log-probabilities
  enter the loss; a head left out keeps its near-uniform initial output, so PPO explores it
  from the start while the cloned heads act as the behaviour does.
* **Critic.** Fitted too (``bc_value``, on by default) to the discounted return of the recorded
  rewards, scaled the way PPO scales rewards (divided by the standard deviation of the discounted
  return, whose statistics then seed PPO's reward scaler). A cloned actor with an untrained
  critic gets advantages that are noise in the first PPO rounds, and clipped updates on noise
  walk the policy away from what was cloned. The returns are this run's values only when the
  dataset was recorded with the run's reward weights; otherwise the critic is left alone and the
  summary says why.
* **Held out.** 15 % of the episodes (at least one), chosen with the run seed, are never trained
  on; the action agreement (greedy action equal to the recorded one on every factor the op uses)
  on them is measured before and after cloning.
* **LSTM.** Episodes are kept whole (padded to the longest, padding excluded from every loss), so
  the recurrent trunk sees each episode from its start, as it does when acting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from attrs import frozen
from torch import Tensor

from esper_core.contracts.decisions import Op
from esper_core.errors import ConfigError, DataError
from esper_policies.encoding import MaskBatch
from esper_policies.offline.dataset import open_datasets
from esper_policies.ppo.config import ACTION_FACTORS
from esper_policies.ppo.network import ActorCritic, joint_log_prob
from esper_policies.ppo.normalize import EPSILON, ReturnScaler, RunningMeanStd

#: share of the episodes held out for the agreement measurement
HOLDOUT = 0.15


@frozen
class Episodes:
    """Recorded episodes as padded ``(T, E, ...)`` tensors; ``valid`` marks real steps."""

    obs: Tensor
    masks: MaskBatch
    actions: Tensor
    rewards: Tensor
    valid: Tensor

    @property
    def count(self) -> int:
        return int(self.obs.shape[1])

    def select(self, columns: Tensor) -> Episodes:
        return Episodes(obs=self.obs[:, columns], masks=self.masks.index((slice(None), columns)),
                        actions=self.actions[:, columns], rewards=self.rewards[:, columns],
                        valid=self.valid[:, columns])


def load_datasets(paths: Sequence[str], *, blueprint_keys: Sequence[str], slot_names: Sequence[str], task: str,
                  obs_size: int, run_config: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """Every complete episode of the datasets (checked against the run), and whether all of
    them were recorded with the run's reward weights. ``run_config`` is the run's configuration
    as tables (``ResolvedRunView.to_toml_dict()``); a dataset recorded under another
    ``[kasmina] mask_by_gates`` is named in a warning."""
    episodes: list[dict[str, Any]] = []
    same_rewards = True
    datasets = open_datasets(paths, option="--bc-dataset", blueprint_keys=blueprint_keys, slot_names=slot_names,
                             task=task, obs_size=obs_size, run_config=run_config)
    for path, dataset in zip(paths, datasets, strict=True):
        meta = dataset.metadata
        recorded = meta.get("run_config", {}).get("rewards") if isinstance(meta.get("run_config"), dict) else None
        same_rewards = same_rewards and recorded == dict(run_config.get("rewards", {}))
        for shard in dataset.shards:
            try:
                data = dataset.read_episode(shard)  # refuses a shard with an action its mask forbids
            except DataError as exc:
                raise ConfigError(f"--bc-dataset {path!r}: {exc}") from None
            episodes.append(data)
    if len(episodes) < 2:
        raise ConfigError(f"--bc-dataset holds {len(episodes)} complete episode; behaviour cloning needs at "
                          "least 2 (some are held out to measure agreement)")
    return episodes, same_rewards


def pad(episodes: Sequence[Mapping[str, Tensor]]) -> Episodes:
    """``(T, E, ...)`` tensors of ``E`` episodes. Padding comes after an episode's last step, so
    the LSTM's features of real steps never see it, and ``valid`` drops it from every loss."""
    length = max(int(e["obs"].shape[0]) for e in episodes)

    def stack(key: str, fill: bool | float | int = 0) -> Tensor:
        out = []
        for e in episodes:
            x = e[key]
            extra = x.new_full((length - x.shape[0], *x.shape[1:]), fill)
            out.append(torch.cat([x, extra]))
        return torch.stack(out, dim=1)

    return Episodes(obs=stack("obs").float(), masks=MaskBatch(stack("mask_ops", False), stack("mask_slots", False),
                                                              stack("mask_blueprints", False)),
                    actions=stack("actions"), rewards=stack("rewards").float(),
                    valid=~_padding(episodes, length))


def _padding(episodes: Sequence[Mapping[str, Tensor]], length: int) -> Tensor:
    lengths = torch.tensor([int(e["obs"].shape[0]) for e in episodes])
    return torch.arange(length).unsqueeze(1) >= lengths.unsqueeze(0)


def discounted_returns(rewards: Tensor, valid: Tensor, gamma: float) -> Tensor:
    """``(T, E)`` reward-to-go of every step (each recorded episode runs to its end)."""
    out = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[1])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = torch.where(valid[t], rewards[t] + gamma * running, torch.zeros_like(running))
        out[t] = running
    return out


def _forward(network: ActorCritic, batch: Episodes, obs_norm: RunningMeanStd | None,
             heads: Sequence[str] = ACTION_FACTORS, *, greedy: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Flattened valid steps: log π(recorded action) over ``heads``, values, greedy actions."""
    obs = batch.obs if obs_norm is None else obs_norm.normalize(batch.obs)
    features, _ = network.features(obs)  # (T, E, H): the LSTM runs each episode from its start
    flat = batch.valid.flatten()
    features = features.flatten(0, 1)[flat]
    masks = batch.masks.flatten().index(flat)
    actions = batch.actions.flatten(0, 1)[flat]
    scored = network.heads(features, masks, actions)
    chosen = network.heads(features, masks, greedy=True).actions if greedy else actions
    columns = [ACTION_FACTORS.index(h) for h in heads]
    return joint_log_prob(scored.factor_log_prob[:, columns]), scored.value, chosen


def agreement(network: ActorCritic, episodes: Episodes, obs_norm: RunningMeanStd | None,
              heads: Sequence[str] = ACTION_FACTORS) -> float:
    """Share of steps whose greedy action equals the recorded one on every factor in ``heads``
    that the recorded op uses (factors not in ``heads`` are not compared)."""
    with torch.no_grad():
        _, _, chosen = _forward(network, episodes, obs_norm, greedy=True)
    recorded = episodes.actions.flatten(0, 1)[episodes.valid.flatten()]
    same = torch.ones(recorded.shape[0], dtype=torch.bool)
    if "op" in heads:
        same &= chosen[:, 0] == recorded[:, 0]
    if "slot" in heads:
        same &= (chosen[:, 1] == recorded[:, 1]) | (recorded[:, 0] == Op.WAIT)
    if "blueprint" in heads:
        same &= (chosen[:, 2] == recorded[:, 2]) | (recorded[:, 0] != Op.GERMINATE)
    return float(same.float().mean())


def behaviour_clone(network: ActorCritic, data: Sequence[Mapping[str, Tensor]], *, obs_norm: RunningMeanStd | None,
                    scaler: ReturnScaler | None, fit_value: bool, epochs: int, lr: float, batch_size: int,
                    gamma: float, value_coef: float, max_grad_norm: float, seed: int,
                    heads: Sequence[str] = ACTION_FACTORS) -> dict[str, Any]:
    """Clone the recorded actions into ``network`` (in place); update ``obs_norm`` and seed
    ``scaler`` from the training episodes. Returns the metrics the run summary records."""
    generator = torch.Generator().manual_seed(seed)
    episodes = pad(data)
    order = torch.randperm(episodes.count, generator=generator)
    held_n = max(1, round(HOLDOUT * episodes.count))
    held, train = episodes.select(order[:held_n]), episodes.select(order[held_n:])
    if obs_norm is not None:
        obs_norm.update(train.obs.flatten(0, 1)[train.valid.flatten()])
    rewards = train.rewards
    if fit_value and scaler is not None:
        seeded = ReturnScaler(train.count, gamma)
        for t in range(train.rewards.shape[0]):
            rows = train.valid[t]
            seeded.returns = torch.where(rows, seeded.returns * gamma + train.rewards[t].double(),
                                         seeded.returns)
            seeded.stats.update(seeded.returns[rows])
        scaler.stats.load_state_dict(seeded.stats.state_dict())
        rewards = (rewards / math.sqrt(float(seeded.stats.var) + EPSILON)).clamp(-10.0, 10.0)
    returns = discounted_returns(rewards, train.valid, gamma)
    before = agreement(network, held, obs_norm, heads)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr, eps=1e-5)
    steps_per_episode = max(1.0, float(train.valid.sum()) / train.count)
    per_batch = max(1, round(batch_size / steps_per_episode))
    network.train()
    actor_loss = value_loss = 0.0
    for _ in range(epochs):
        totals = [0.0, 0.0, 0]
        for columns in torch.randperm(train.count, generator=generator).split(per_batch):
            batch = train.select(columns)
            log_prob, value, _ = _forward(network, batch, obs_norm, heads)
            target = returns[:, columns].flatten()[batch.valid.flatten()]
            pi_loss = -log_prob.mean()
            v_loss = 0.5 * (value - target).square().mean()
            loss = pi_loss + value_coef * v_loss if fit_value else pi_loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), max_grad_norm)
            optimizer.step()
            n = int(log_prob.shape[0])
            totals[0] += pi_loss.item() * n
            totals[1] += v_loss.item() * n
            totals[2] += n
        actor_loss, value_loss = totals[0] / max(1, totals[2]), totals[1] / max(1, totals[2])
    network.eval()
    with torch.no_grad():
        held_log_prob, _, _ = _forward(network, held, obs_norm, heads)
    return {
        "episodes": train.count,
        "held_out_episodes": held.count,
        "transitions": int(train.valid.sum()),
        "epochs": epochs,
        "loss": actor_loss,
        "value_loss": value_loss if fit_value else None,
        "value_fitted": fit_value,
        "held_out_loss": float(-held_log_prob.mean()),
        "heads": list(heads),
        "train_agreement": agreement(network, train, obs_norm, heads),
        "held_out_agreement_before": before,
        "held_out_agreement": agreement(network, held, obs_norm, heads),
    }
