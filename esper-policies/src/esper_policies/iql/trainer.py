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
from collections.abc import Iterator
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
from esper_policies.offline.dataset import Batch, EpisodeDataset, require_dataset
from esper_policies.ppo.network import ActorCritic
from esper_policies.ppo.normalize import RunningMeanStd

logger = structlog.get_logger(__name__)

FINAL = "policy.pt"


class IQLTrainer:
    def __init__(self, *, context: PolicyTrainingContext) -> None:
        self.context = context
        if context.resume:  # refused here, before esper run writes anything into the run directory
            raise ConfigError("--resume applies to PPO training; IQL trains from its datasets in one go")
        options = dict(context.policy.options)
        if "dataset" not in options:
            require_dataset(None)
        self.config = parse_options(IQLConfig, options, owner="policy 'iql'")
        self.datasets = [EpisodeDataset(path) for path in self.config.dataset]
        for dataset in self.datasets:
            dataset.check(blueprint_keys=context.policy.blueprint_keys, slot_names=context.policy.slot_names)
            if not len(dataset):
                raise ConfigError(f"episode dataset {str(dataset.path)!r} has no complete episodes yet")

    @classmethod
    def from_context(cls, *, context: PolicyTrainingContext) -> IQLTrainer:
        return cls(context=context)

    def _batches(self, generator: torch.Generator) -> Iterator[Batch]:
        # Endless stream; each pass visits every dataset's shards once, in shuffled order.
        per_dataset = max(1, self.config.batch_size // len(self.datasets))
        while True:
            streams = [d.minibatches(per_dataset, generator=generator) for d in self.datasets]
            for parts in zip(*streams, strict=False):
                yield Batch(obs=torch.cat([p.obs for p in parts]), next_obs=torch.cat([p.next_obs for p in parts]),
                            masks=type(parts[0].masks)(*(torch.cat([getattr(p.masks, f) for p in parts])
                                                         for f in ("ops", "slots", "blueprints"))),
                            actions=torch.cat([p.actions for p in parts]),
                            rewards=torch.cat([p.rewards for p in parts]),
                            terminated=torch.cat([p.terminated for p in parts]))

    def train(self, *, session: TrainingSessionProtocol) -> dict[str, Any]:
        if session.resume:
            raise ConfigError("--resume applies to PPO training; IQL trains from its datasets in one go")
        cfg, ctx = self.config, self.context.policy
        started = time.perf_counter()
        obs_size = ObservationBuilder(1, ctx.n_slots).size
        obs_norm = None
        if cfg.normalize_observations:
            obs_norm = RunningMeanStd((obs_size,))
            for dataset in self.datasets:
                for shard in dataset.shards:
                    obs_norm.update(dataset.read_episode(shard)["obs"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            actor = ActorCritic(obs_size, ctx.n_slots, len(ctx.blueprint_keys), hidden=cfg.hidden)
            q = TwinQ(obs_size, ctx.n_slots, len(ctx.blueprint_keys), cfg.hidden)
        learner = IQLLearner(actor, q, lr=cfg.lr, gamma=cfg.gamma, expectile=cfg.expectile, beta=cfg.beta,
                             polyak=cfg.polyak, max_weight=cfg.max_weight)
        generator = torch.Generator().manual_seed(ctx.seed)
        history: list[dict[str, Any]] = []
        window: list[dict[str, float]] = []
        actor.train()
        for step, batch in zip(range(1, cfg.steps + 1), self._batches(generator), strict=False):
            if session.stop_requested:  # SIGINT/SIGTERM: nothing to checkpoint, so stop at once
                raise RunInterrupted(f"interrupted at step {step} of {cfg.steps}; IQL keeps no checkpoint: "
                                     "run the command again", signum=session.stop_signal)
            if obs_norm is not None:
                batch = attrs.evolve(batch, obs=obs_norm.normalize(batch.obs),
                                     next_obs=obs_norm.normalize(batch.next_obs))
            window.append(learner.step(batch))
            if step % cfg.log_every == 0 or step == cfg.steps:
                means = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
                history.append({"step": step, **means})
                window = []
                logger.info("iql_step", step=f"{step}/{cfg.steps}", **{k: round(v, 4) for k, v in means.items()})
        actor.eval()
        final = session.run_dir / FINAL
        checkpoint.save(final, policy="iql", run_config=session.resolved.to_toml_dict(),
                        blueprint_keys=ctx.blueprint_keys, slot_names=ctx.slot_names, network=actor,
                        obs_size=obs_size, obs_norm=obs_norm,
                        training={"config": attrs.asdict(cfg), "history": history})
        return {
            "steps": cfg.steps,
            "datasets": [str(d.path) for d in self.datasets],
            "episodes_in_datasets": sum(len(d) for d in self.datasets),
            "policy_checkpoint": str(final),
            "history": history,
            "train_seconds": round(time.perf_counter() - started, 3),
        }
