"""Training IQL inside ``esper run --policy iql --dataset DIR[,DIR...]``.

The datasets are checked against the run (blueprint catalog, slot count, observation schema)
before anything is written; observation statistics come from one streaming pass over them;
then ``steps`` minibatches stream from the shards (a few episodes in memory at a time) through
:class:`~esper_policies.iql.update.IQLLearner`. The trained actor is saved as
``RUN_DIR/policy.pt`` in the same format as PPO's, for ``esper evaluate`` and
``--policy-checkpoint``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import structlog
import torch

from esper_core.contracts.protocols import PolicyTrainingContext
from esper_core.contracts.training import TrainingSessionProtocol
from esper_core.errors import ConfigError
from esper_core.options import parse_options
from esper_core.sdk import RunInterrupted
from esper_policies import checkpoint
from esper_policies.encoding import ObservationBuilder
from esper_policies.iql.config import IQLConfig
from esper_policies.iql.update import IQLLearner, TwinQ
from esper_policies.offline.dataset import Batch, EpisodeDataset, open_datasets, require_dataset
from esper_policies.ppo.network import ActorCritic
from esper_policies.ppo.normalize import RunningMeanStd

logger = structlog.get_logger(__name__)

FINAL = "policy.pt"


@attrs.frozen
class FittedIQL:
    """What :func:`fit` trained: the actor (in eval mode), the twin Q, the observation statistics
    (``None`` when not normalising) and the logged loss means."""

    actor: ActorCritic
    q: TwinQ
    obs_norm: RunningMeanStd | None
    history: list[dict[str, Any]]


def _batches(datasets: list[EpisodeDataset], batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
    # Endless stream; each pass visits every dataset's shards once, in shuffled order. Every
    # dataset gives an equal share of each minibatch, whatever its size.
    per_dataset = max(1, batch_size // len(datasets))
    while True:
        streams = [d.minibatches(per_dataset, generator=generator) for d in datasets]
        for parts in zip(*streams, strict=False):
            yield Batch(obs=torch.cat([p.obs for p in parts]), next_obs=torch.cat([p.next_obs for p in parts]),
                        masks=type(parts[0].masks)(*(torch.cat([getattr(p.masks, f) for p in parts])
                                                     for f in ("ops", "slots", "blueprints"))),
                        actions=torch.cat([p.actions for p in parts]),
                        rewards=torch.cat([p.rewards for p in parts]),
                        terminated=torch.cat([p.terminated for p in parts]))


def fit(cfg: IQLConfig, datasets: list[EpisodeDataset], *, n_slots: int, n_blueprints: int, seed: int,
        before_step: Callable[[int], None] | None = None) -> FittedIQL:
    """Train IQL's networks on ``datasets`` for ``cfg.steps`` minibatches (``before_step(step)`` is
    called before each one and may raise to stop)."""
    obs_size = ObservationBuilder(1, n_slots).size
    obs_norm = None
    if cfg.normalize_observations:
        obs_norm = RunningMeanStd((obs_size,))
        for dataset in datasets:
            for shard in dataset.shards:
                obs_norm.update(dataset.read_episode(shard)["obs"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        actor = ActorCritic(obs_size, n_slots, n_blueprints, hidden=cfg.hidden, slot_head=cfg.slot_head)
        q = TwinQ(obs_size, n_slots, n_blueprints, cfg.hidden)
    learner = IQLLearner(actor, q, lr=cfg.lr, gamma=cfg.gamma, expectile=cfg.expectile, beta=cfg.beta,
                         polyak=cfg.polyak, max_weight=cfg.max_weight, actor_dropout=cfg.actor_dropout,
                         actor_weight_decay=cfg.actor_weight_decay, advantage_weights=cfg.advantage_weights)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    window: list[dict[str, float]] = []
    actor.train()
    for step, batch in zip(range(1, cfg.steps + 1), _batches(datasets, cfg.batch_size, generator), strict=False):
        if before_step is not None:
            before_step(step)
        if obs_norm is not None:
            batch = attrs.evolve(batch, obs=obs_norm.normalize(batch.obs), next_obs=obs_norm.normalize(batch.next_obs))
        window.append(learner.step(batch))
        if step % cfg.log_every == 0 or step == cfg.steps:
            means = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
            history.append({"step": step, **means})
            window = []
            logger.info("iql_step", step=f"{step}/{cfg.steps}", **{k: round(v, 4) for k, v in means.items()})
    actor.eval()
    return FittedIQL(actor=actor, q=q, obs_norm=obs_norm, history=history)


def iql_training_options(options: Mapping[str, Any]) -> IQLConfig:
    """The trainer's options; a table naming no dataset is refused saying how to record one."""
    if "dataset" not in options:
        require_dataset(None)
    return parse_options(IQLConfig, dict(options), owner="policy 'iql'")


class IQLTrainer:
    def __init__(self, *, context: PolicyTrainingContext) -> None:
        self.context = context
        if context.resume:  # refused here, before esper run writes anything into the run directory
            raise ConfigError("--resume applies to PPO training; IQL trains from its datasets in one go")
        self.config = iql_training_options(context.policy.options)
        ctx = context.policy
        # The same checks as PPO's --bc-dataset: action space, observation schema and size, task.
        self.datasets = open_datasets(self.config.dataset, option="--dataset", blueprint_keys=ctx.blueprint_keys,
                                      slot_names=ctx.slot_names, task=context.resolved.task.name,
                                      obs_size=ObservationBuilder(1, ctx.n_slots).size,
                                      run_config=context.resolved.to_toml_dict())

    @classmethod
    def from_context(cls, *, context: PolicyTrainingContext) -> IQLTrainer:
        return cls(context=context)

    def train(self, *, session: TrainingSessionProtocol) -> dict[str, Any]:
        if session.resume:
            raise ConfigError("--resume applies to PPO training; IQL trains from its datasets in one go")
        ctx = self.context.policy

        def stop(step: int) -> None:
            if session.stop_requested:  # SIGINT/SIGTERM: nothing to checkpoint, so stop at once
                raise RunInterrupted(f"interrupted at step {step} of {self.config.steps}; IQL keeps no checkpoint: "
                                     "run the command again", signum=session.stop_signal)

        started = time.perf_counter()
        fitted = fit(self.config, self.datasets, n_slots=ctx.n_slots, n_blueprints=len(ctx.blueprint_keys),
                     seed=ctx.seed, before_step=stop)
        actor, obs_norm, history = fitted.actor, fitted.obs_norm, fitted.history
        final = session.run_dir / FINAL
        checkpoint.save(final, policy="iql", run_config=session.resolved.to_toml_dict(),
                        blueprint_keys=ctx.blueprint_keys, slot_names=ctx.slot_names, network=actor,
                        obs_size=ObservationBuilder(1, ctx.n_slots).size, obs_norm=obs_norm,
                        training={"config": attrs.asdict(self.config), "history": history}, critic=fitted.q)
        return {
            "steps": self.config.steps,
            "datasets": [str(d.path) for d in self.datasets],
            "episodes_in_datasets": sum(len(d) for d in self.datasets),
            "policy_checkpoint": str(final),
            "history": history,
            "train_seconds": round(time.perf_counter() - started, 3),
        }
