"""Training PPO inside ``esper run --policy ppo``: rounds of rollouts on vectorised environments.

A round: every one of the N environments runs one episode of ``episode_length`` epochs on a
fresh host with its own seed (:func:`esper_core.sdk.episode_seed`); the policy acts
for all N at once after each epoch (one batched forward pass); then GAE and the PPO update run
on the ``N × episode_length`` transitions, a ``ppo_update`` event is emitted and a checkpoint
is written (``checkpoints/latest.pt``, atomically). ``--resume RUN_DIR`` reloads that
checkpoint — weights, optimizer, statistics, sampling generator, rounds done — and continues;
because every episode's seed depends only on (run seed, environment, round), a resumed run
makes the same decisions as one that was never interrupted. The final policy is
``RUN_DIR/policy.pt``, for ``esper evaluate`` and ``--policy-checkpoint``.

With ``--bc-dataset`` the rounds start from a policy cloned from recorded episodes
(:mod:`esper_policies.ppo.bc`); the cloning is checkpointed before the first round. With
``bc_anchor`` a frozen copy of the cloned policy (and of its observation statistics) acts beside
the learner in every round, so the update can hold the cloned heads near it; the copy is part of
the checkpoint.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import structlog
import torch

from esper_core.contracts.decisions import Op
from esper_core.contracts.events import PPOUpdate
from esper_core.contracts.protocols import PolicyTrainingContext
from esper_core.contracts.training import Environments, TrainingSessionProtocol
from esper_core.errors import ConfigError
from esper_core.options import parse_options
from esper_core.sdk import Progress, adam, episode_seed
from esper_policies import checkpoint
from esper_policies.encoding import MaskBatch, ObservationBuilder, encode_masks, to_decisions
from esper_policies.ppo.bc import behaviour_clone, load_datasets
from esper_policies.ppo.config import PPOConfig
from esper_policies.ppo.gae import compute_gae
from esper_policies.ppo.group import group_advantages
from esper_policies.ppo.network import ActorCritic
from esper_policies.ppo.normalize import ReturnScaler, RunningMeanStd
from esper_policies.ppo.update import Rollout, ppo_update

logger = structlog.get_logger(__name__)

LATEST = "latest.pt"
FINAL = "policy.pt"


#: The end-of-training table ``esper run`` prints (title, history key); rounds count from 1 there.
REPORT_COLUMNS = (("round", "round"), ("mean return", "mean_return"), ("mean final acc %", "mean_final_accuracy"),
                  ("germinated", "germinations"), ("fossilized", "fossilized"), ("culled", "culled"),
                  ("anti-pattern share", "antipattern_share"), ("anti-pattern chance", "antipattern_chance"),
                  ("entropy", "entropy"), ("approx KL", "approx_kl"))

class PPOTrainer:
    """Built (and its options validated) before the run directory is written."""

    def __init__(self, *, context: PolicyTrainingContext) -> None:
        self.context = context
        self.config = parse_options(PPOConfig, context.policy.options, owner="policy 'ppo'")
        epochs = context.policy.max_epochs
        self.length = self.config.episode_length or epochs
        if self.length > epochs:
            raise ConfigError(f"[policy] episode_length = {self.length} is longer than the run's {epochs} epochs; "
                              f"use --episode-length ≤ {epochs} or raise --epochs")
        if self.config.workers and context.device != "cpu":
            raise ConfigError(f"--workers runs environments in CPU processes; device {context.device!r} "
                              "needs the in-process environments (drop --workers)")
        # Read and checked here, before the run directory is written; a resumed run has cloned
        # already (its checkpoint says so), so it neither clones again nor needs the data.
        self.bc_data: list[dict[str, Any]] = []
        self.bc_same_rewards = False
        if self.config.bc_dataset and not context.resume:
            ctx = context.policy
            self.bc_data, self.bc_same_rewards = load_datasets(
                self.config.bc_dataset, blueprint_keys=ctx.blueprint_keys, slot_names=ctx.slot_names,
                task=context.resolved.task.name, obs_size=ObservationBuilder(1, ctx.n_slots).size,
                run_config=context.resolved.to_toml_dict())

    @classmethod
    def from_context(cls, *, context: PolicyTrainingContext) -> PPOTrainer:
        return cls(context=context)

    def train(self, *, session: TrainingSessionProtocol) -> dict[str, Any]:
        return _Training(self, session).run()


class _Training:
    """The state of one training job (kept out of PPOTrainer so a trainer holds only options)."""

    def __init__(self, trainer: PPOTrainer, session: TrainingSessionProtocol) -> None:
        cfg, ctx = trainer.config, trainer.context.policy
        self.cfg, self.session, self.length = cfg, session, trainer.length
        self.keys = ctx.blueprint_keys
        self.slot_names = ctx.slot_names
        self.seed = ctx.seed
        self.antipatterns = {b.key for b in session.resolved.blueprints if b.is_antipattern}
        #: which of the action's blueprints (``keys``, the blueprint head's order) are anti-patterns
        self.is_antipattern = torch.tensor([key in self.antipatterns for key in self.keys])
        self.builder = ObservationBuilder(cfg.envs, ctx.n_slots)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.network = ActorCritic(self.builder.size, ctx.n_slots, len(self.keys), trunk=cfg.trunk,
                                       hidden=cfg.hidden, initial_wait_logit=cfg.initial_wait_logit,
                                       slot_head=cfg.slot_head)
        self.optimizer = adam(self.network.parameters(), lr=cfg.lr, eps=1e-5)
        self.obs_norm = RunningMeanStd((self.builder.size,)) if cfg.normalize_observations else None
        self.scaler = ReturnScaler(cfg.envs, cfg.gamma) if cfg.normalize_rewards else None
        self.generator = torch.Generator().manual_seed(self.seed)
        self.history: list[dict[str, Any]] = []
        self.bc_data, self.bc_same_rewards = trainer.bc_data, trainer.bc_same_rewards
        self.bc: dict[str, Any] | None = None
        #: the cloned policy and its observation statistics, frozen (``bc_anchor`` only)
        self.reference: ActorCritic | None = None
        self.reference_norm: RunningMeanStd | None = None
        self.rounds_done = 0
        self.policy_seconds = 0.0
        self.env_seconds = 0.0

    # -- checkpoints ------------------------------------------------------------------------

    def _training_state(self) -> dict[str, Any]:
        return {
            "config": attrs.asdict(self.cfg),
            "rounds_done": self.rounds_done,
            "optimizer": self.optimizer.state_dict(),
            "reward_scaler": None if self.scaler is None else self.scaler.state_dict(),
            "generator": self.generator.get_state(),
            "history": self.history,
            "bc": self.bc,
            "reference": None if self.reference is None else {
                "state_dict": self.reference.state_dict(),
                "obs_norm": None if self.reference_norm is None else self.reference_norm.state_dict()},
            "policy_seconds": self.policy_seconds,
            "env_seconds": self.env_seconds,
        }

    def _save(self, path: Path) -> None:
        checkpoint.save(path, policy="ppo", run_config=self.session.resolved.to_toml_dict(), blueprint_keys=self.keys,
                        slot_names=self.slot_names, network=self.network, obs_size=self.builder.size,
                        obs_norm=self.obs_norm, training=self._training_state())

    def _resume(self) -> None:
        path = self.session.checkpoint_dir / LATEST
        if not path.is_file():
            raise ConfigError(f"--resume: {str(path)!r} does not exist; was {str(self.session.run_dir)!r} "
                              "a PPO training run that finished at least one round?")
        loaded = checkpoint.load(path, policy="ppo", blueprint_keys=self.keys, slot_names=self.slot_names)
        self.session.refuse_other_run(loaded.run_config, source=repr(str(path)))
        network, obs_norm, state = loaded.network, loaded.obs_norm, loaded.training
        saved = checkpoint.architecture(network, self.builder.size)
        wanted = checkpoint.architecture(self.network, self.builder.size)
        if saved != wanted or (obs_norm is None) != (self.obs_norm is None):
            raise ConfigError(f"--resume: the checkpoint's network {saved} differs from the options' {wanted}; "
                              "resume with the options it was trained with")
        self.network.load_state_dict(network.state_dict())
        self.obs_norm = obs_norm
        try:  # the learner's own state: a damaged or crafted file is named, not a traceback
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scaler is not None and state["reward_scaler"] is not None:
                self.scaler.load_state_dict(state["reward_scaler"])
            self.generator.set_state(state["generator"])
            self.history = list(state["history"])
            self.rounds_done = int(state["rounds_done"])
            self.bc = state.get("bc")
            if self.cfg.bc_anchor:
                saved = state["reference"]
                if not isinstance(saved, dict):
                    raise TypeError("bc_anchor's frozen cloned policy is missing")
                self._freeze_reference(saved)
            self.policy_seconds = float(state["policy_seconds"])
            self.env_seconds = float(state["env_seconds"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
            raise ConfigError(f"--resume: {str(path)!r} holds a damaged training state "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
        if self.rounds_done < 0 or not all(isinstance(h, dict) for h in self.history):
            raise ConfigError(f"--resume: {str(path)!r} holds a damaged training state (rounds or history)")
        if not isinstance(self.bc, dict | None):
            raise ConfigError(f"--resume: {str(path)!r} holds a damaged training state (behaviour cloning record)")
        logger.info("ppo_resumed", checkpoint=str(path), rounds_done=self.rounds_done, rounds=self.cfg.rounds)

    # -- the loop ---------------------------------------------------------------------------

    def _freeze_reference(self, saved: dict[str, Any] | None = None) -> None:
        """The policy ``bc_anchor`` holds the cloned heads near: the network and observation
        statistics as cloning left them, or as a checkpoint ``saved`` them."""
        self.reference = copy.deepcopy(self.network)
        self.reference_norm = copy.deepcopy(self.obs_norm)
        if saved is not None:
            self.reference.load_state_dict(saved["state_dict"])
            if self.reference_norm is not None:
                self.reference_norm.load_state_dict(saved["obs_norm"])
        self.reference.eval().requires_grad_(False)

    def _clone(self) -> None:
        cfg = self.cfg
        fit_value = cfg.bc_value and self.bc_same_rewards
        started = time.perf_counter()
        self.bc = behaviour_clone(self.network, self.bc_data, obs_norm=self.obs_norm, scaler=self.scaler,
                                  fit_value=fit_value, epochs=cfg.bc_epochs, lr=cfg.bc_lr,
                                  batch_size=cfg.bc_batch_size, gamma=cfg.gamma, value_coef=cfg.value_coef,
                                  max_grad_norm=cfg.max_grad_norm, seed=self.seed, heads=cfg.bc_heads)
        if cfg.bc_value and not fit_value:
            self.bc["value_skipped"] = "a dataset was recorded with other reward weights than this run's"
        self.bc["datasets"] = list(cfg.bc_dataset or ())
        self.bc["seconds"] = round(time.perf_counter() - started, 3)
        self.bc_data = []
        if cfg.bc_anchor:
            self._freeze_reference()
        logger.info("ppo_behaviour_cloned", loss=round(self.bc["loss"], 4),
                    held_out_agreement=round(self.bc["held_out_agreement"], 3),
                    before=round(self.bc["held_out_agreement_before"], 3))
        # Saved at once, so a run stopped from here on resumes after the cloning, never redoes it.
        self._save(self.session.checkpoint_dir / LATEST)
        self.session.checkpointed("behaviour cloning")

    def run(self) -> dict[str, Any]:
        if self.session.resume:
            self._resume()
        elif self.bc_data:
            self._clone()
        envs = self.session.environments(n_envs=self.cfg.envs, workers=self.cfg.workers, policy_name="ppo",
                                         length=self.length)
        progress = Progress("PPO", self.cfg.rounds, "rounds", done=self.rounds_done)
        # On a terminal the progress line is the round's line; its record stays at debug level.
        log = logger.debug if progress.enabled else logger.info
        try:
            for round_index in range(self.rounds_done, self.cfg.rounds):
                metrics = self._round(envs, round_index)
                self.rounds_done = round_index + 1
                self.history.append(metrics)
                self.session.emit(PPOUpdate(update=round_index, episode=round_index * self.cfg.envs,
                                            epoch=self.length,
                                            metrics={k: v for k, v in metrics.items() if v is not None}))
                self._save(self.session.checkpoint_dir / LATEST)
                log("ppo_round", round=f"{self.rounds_done}/{self.cfg.rounds}",
                    mean_return=round(metrics["mean_return"], 3),
                    mean_final_accuracy=round(metrics["mean_final_accuracy"], 2),
                    entropy=round(metrics["entropy"], 3), approx_kl=round(metrics["approx_kl"], 4),
                    antipattern_share=metrics.get("antipattern_share"),
                    antipattern_chance=metrics.get("antipattern_chance"))
                progress.step(f"mean return {metrics['mean_return']:+.3f}, mean final accuracy "
                              f"{metrics['mean_final_accuracy']:.2f}%, entropy {metrics['entropy']:.3f}")
                # A first SIGINT/SIGTERM lets the round finish, so a resume loses no work.
                self.session.checkpointed(f"round {self.rounds_done} of {self.cfg.rounds}")
        finally:
            envs.close()
        final = self.session.run_dir / FINAL
        self._save(final)
        return self._summary(final)

    def _normalize(self, obs: torch.Tensor, *, update_stats: bool) -> torch.Tensor:
        if self.obs_norm is None:
            return obs
        if update_stats:
            self.obs_norm.update(obs)
        return self.obs_norm.normalize(obs)

    def _round(self, envs: Environments, round_index: int) -> dict[str, Any]:
        cfg, n = self.cfg, self.cfg.envs
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr_at(round_index)
        self.builder.reset()
        if self.scaler is not None:
            self.scaler.reset()
        started = time.perf_counter()
        steps = envs.start([round_index * n + i for i in range(n)],
                           [episode_seed(self.seed, env=cfg.group_of(i), episode=round_index) for i in range(n)])
        env_time = time.perf_counter() - started
        policy_time = 0.0
        state = self.network.initial_state(n)
        reference_state = None if self.reference is None else self.reference.initial_state(n)
        obs_t, masks_t, actions_t, logp_t, values_t, rewards_t, raw_t, term_t, trunc_t = ([] for _ in range(9))
        reference_t: list[tuple[torch.Tensor, ...]] = []
        for _ in range(self.length):
            t0 = time.perf_counter()
            built = self.builder.build([s.report for s in steps])
            obs = self._normalize(built, update_stats=True)
            masks = encode_masks([s.mask for s in steps])
            with torch.no_grad():
                features, state = self.network.features(obs, state)
                out = self.network.heads(features, masks, generator=self.generator)
                if self.reference is not None:  # what the cloned policy makes of the same choice
                    seen = built if self.reference_norm is None else self.reference_norm.normalize(built)
                    reference_features, reference_state = self.reference.features(seen, reference_state)
                    reference_t.append(self.reference.heads(reference_features, masks, out.actions).head_log_probs)
            decisions = to_decisions(out.actions, out.log_prob.exp(), out.value, self.keys, how="sampled")
            t1 = time.perf_counter()
            steps = envs.step(decisions)
            t2 = time.perf_counter()
            raw = torch.tensor([s.reward for s in steps], dtype=torch.float32)
            obs_t.append(obs)
            masks_t.append(masks)
            actions_t.append(out.actions)
            logp_t.append(out.log_prob)
            values_t.append(out.value)
            raw_t.append(raw)
            rewards_t.append(raw if self.scaler is None else self.scaler.scale(raw).float())
            term_t.append(torch.tensor([s.done and not s.truncated for s in steps]))
            trunc_t.append(torch.tensor([s.truncated for s in steps]))
            policy_time += t1 - t0
            env_time += t2 - t1
        t0 = time.perf_counter()
        values = torch.stack(values_t)
        last_values = torch.zeros(n)
        if any(s.truncated for s in steps):  # bootstrap from V(state the episode was cut off in)
            with torch.no_grad():
                cut = self.builder.peek_next([s.report for s in steps])
                features, _ = self.network.features(self._normalize(cut, update_stats=False), state)
                last_values = self.network.value(features)
        next_values = torch.cat([values[1:], last_values.unsqueeze(0)])
        terminated, truncated = torch.stack(term_t), torch.stack(trunc_t)
        rewards = torch.stack(rewards_t)
        advantages, returns = compute_gae(rewards, values, next_values, terminated, truncated,
                                          gamma=cfg.gamma, lam=cfg.gae_lambda)
        if cfg.advantage == "group":  # λ = 1: the discounted return-to-go, bootstrapped where cut
            _, to_go = compute_gae(rewards, values, next_values, terminated, truncated, gamma=cfg.gamma, lam=1.0)
            advantages = group_advantages(to_go, cfg.group_size)
        rollout = Rollout(obs=torch.stack(obs_t), masks=MaskBatch.stack(masks_t), actions=torch.stack(actions_t),
                          log_probs=torch.stack(logp_t), values=values, advantages=advantages, returns=returns,
                          reference=_stack_heads(reference_t) if reference_t else None)
        self.network.train()
        metrics: dict[str, Any] = ppo_update(self.network, self.optimizer, rollout, config=cfg,
                                             entropy_coef=cfg.entropy_coef_at(round_index), generator=self.generator)
        self.network.eval()
        policy_time += time.perf_counter() - t0
        self.policy_seconds += policy_time
        self.env_seconds += env_time
        metrics.update(self._round_statistics(envs, torch.stack(actions_t), torch.stack(raw_t), rollout.masks))
        metrics.update(round=round_index, lr=cfg.lr_at(round_index), entropy_coef=cfg.entropy_coef_at(round_index),
                       policy_seconds=policy_time, env_seconds=env_time)
        return metrics

    def _round_statistics(self, envs: Environments, actions: torch.Tensor, rewards: torch.Tensor,
                          masks: MaskBatch) -> dict[str, Any]:
        results = [r for r in envs.results() if r is not None]
        ops = Counter(Op(int(o)).name for o in actions[..., 0].flatten())
        total = max(1, sum(ops.values()))
        germinated = [self.keys[int(b)] for o, b in zip(actions[..., 0].flatten(), actions[..., 2].flatten(),
                                                         strict=True) if int(o) == Op.GERMINATE]
        outcomes = Counter(s["outcome"] for r in results for s in r["seeds"])
        stats: dict[str, Any] = {
            "mean_return": float(rewards.sum(0).mean()),
            "mean_final_accuracy": sum(r["final_accuracy"] for r in results) / max(1, len(results)),
            "germinations": len(germinated),
            "fossilized": outcomes.get("fossilized", 0),
            "culled": outcomes.get("culled", 0),
            **{f"op_share_{op.name.lower()}": ops.get(op.name, 0) / total for op in Op},
            **{f"germinated.{key}": count for key, count in sorted(Counter(germinated).items())},
        }
        if self.antipatterns:
            bad = sum(1 for key in germinated if key in self.antipatterns)
            stats["antipattern_share"] = bad / len(germinated) if germinated else None
            # What a uniform blueprint choice would have picked at the same decisions: the mask
            # (a parameter budget, the topology) can leave fewer or more anti-patterns on offer
            # than the catalog's overall proportion.
            offered = masks.blueprints[actions[..., 0] == Op.GERMINATE]
            chance = (offered & self.is_antipattern).sum(1) / offered.sum(1).clamp(min=1)
            stats["antipattern_chance"] = float(chance.mean()) if germinated else None
        return stats

    def _summary(self, final: Path) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        total = self.policy_seconds + self.env_seconds
        return {
            "rounds": self.rounds_done,
            "envs": self.cfg.envs,
            "episode_length": self.length,
            "episodes": self.rounds_done * self.cfg.envs,
            "policy_checkpoint": str(final),
            "final_accuracy": last.get("mean_final_accuracy"),
            "mean_return": last.get("mean_return"),
            "policy_seconds": round(self.policy_seconds, 3),
            "env_seconds": round(self.env_seconds, 3),
            "policy_overhead": self.policy_seconds / total if total else None,
            "history": self.history,
            **({"bc": self.bc} if self.bc is not None else {}),
            "shape": f"{self.rounds_done} rounds × {self.cfg.envs} environments × {self.length} epochs",
            "report": {"columns": [title for title, _ in REPORT_COLUMNS],
                       "rows": [[h["round"] + 1 if key == "round" else h.get(key) for _, key in REPORT_COLUMNS]
                                for h in self.history]},
        }


def _stack_heads(steps: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-step head rows ``(N, K)`` stacked into ``(T, N, K)`` per head."""
    op, slot, blueprint = (torch.stack(rows) for rows in zip(*steps, strict=True))
    return op, slot, blueprint
