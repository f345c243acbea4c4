"""The Architect generator: pre-train on the catalog, then REINFORCE on Crucible scores.

* Pre-training: teacher-forced cross-entropy on the token forms of the built-in blueprints, so
  the first samples are near the hand-designed ones (an architectural prior, as the design
  notes ask) rather than random token soup.
* REINFORCE (Williams 1992) with a moving baseline: the loss is
  ``−mean((R − b) · log π(sequence)) − β · mean entropy``, with ``b`` an exponential moving
  average of the batch mean reward and β the entropy bonus that keeps it exploring (Zoph & Le
  2017 train their NAS controller the same way).
* Curriculum: the reward is the Crucible's fitness with performance counted over the tasks of
  the current stage only — XOR first, then each harder task is added once the newest one is
  solved by the batch (mean chance-corrected performance of valid candidates ≥ ``advance_at``)
  or its share of the budget is spent. The Crucible always scores every task, so the fitness
  reported (and compared with the baselines) is the same for every generator.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
import torch
from attrs import field, frozen

from esper_core.options import int_at_least, non_negative_number, one_of, parse_options, positive_number
from esper_core.sdk import Evaluation, adam
from esper_policies.architect.model import DECODERS, encode, sample

logger = structlog.get_logger(__name__)


@frozen(kw_only=True)
class ArchitectConfig:
    decoder: str = field(default="gru", validator=one_of(*DECODERS))
    hidden: int = field(default=64, validator=int_at_least(8))
    lr: float = field(default=3e-3, validator=positive_number())
    #: entropy bonus β
    entropy: float = field(default=0.01, validator=non_negative_number())
    #: moving-baseline decay: b ← decay·b + (1 − decay)·mean reward
    baseline_decay: float = field(default=0.9, validator=non_negative_number())
    pretrain_steps: int = field(default=150, validator=int_at_least(0))
    #: sampling temperature. 1.5 found the best novel blueprints of the variants measured on
    #: seeds apart from the discovery study's (0.937 ± 0.030 against 0.881 ± 0.090 at 1.0 and
    #: 0.926 ± 0.033 with ``novelty_penalty`` 0.5; docs/architect_novelty.md): the pre-trained
    #: prior is sharp, and sampling it flatter leaves the catalog's neighbourhood more often.
    temperature: float = field(default=1.5, validator=positive_number())
    #: chance-corrected performance at which the curriculum adds the next task
    advance_at: float = field(default=0.7, validator=non_negative_number())
    #: subtracted from the reward of a valid candidate within the catalog's radius (not novel):
    #: the pre-training prior makes near-copies of the catalog likely, and the fitness's own
    #: redundancy term (−0.1) is smaller than the gap between a catalog design and a new one.
    novelty_penalty: float = field(default=0.0, validator=non_negative_number())


class Architect:
    """A token decoder trained as a blueprint generator (see the module docstring)."""

    def __init__(self, *, seed: int, config: ArchitectConfig, catalog: Sequence[Sequence[str]],
                 tasks: Sequence[str], budget: int) -> None:
        self.config = config
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.model = DECODERS[config.decoder](hidden=config.hidden)
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer = adam(self.model.parameters(), lr=config.lr)
        self.tasks = tuple(tasks)
        self.stage = 0
        self.stage_budget = max(1, budget // max(1, len(self.tasks)))
        self.in_stage = 0
        self.baseline: float | None = None
        self.pretrain_loss = self.pretrain([tuple(t) for t in catalog]) if catalog else None

    def pretrain(self, sequences: list[tuple[str, ...]]) -> float:
        """Teacher-forced fitting of the catalog's token forms; returns the last loss."""
        inputs, targets, mask = encode(sequences)
        loss = torch.tensor(0.0)
        for _ in range(self.config.pretrain_steps):
            logits = self.model(inputs)
            loss = torch.nn.functional.cross_entropy(logits[mask], targets[mask])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        logger.debug("architect_pretrained", loss=float(loss.detach()), sequences=len(sequences))
        return float(loss.detach())

    def propose(self, n: int) -> list[tuple[str, ...]]:
        self.model.eval()
        return sample(self.model, n, self.generator, self.config.temperature)

    def reward(self, evaluation: Evaluation) -> float:
        """Fitness with performance over the current curriculum stage's tasks only, less
        ``novelty_penalty`` for a valid candidate within the catalog's radius."""
        if not evaluation.valid:
            return evaluation.fitness
        stage_tasks = self.tasks[: self.stage + 1]
        stage_perf = statistics.fmean(evaluation.performance[t] for t in stage_tasks)
        penalty = 0.0 if evaluation.novel else self.config.novelty_penalty
        return evaluation.fitness - evaluation.mean_performance + stage_perf - penalty

    def observe(self, candidates: Sequence[tuple[str, ...]], evaluations: Sequence[Evaluation]) -> dict[str, float]:
        rewards = torch.tensor([self.reward(e) for e in evaluations])
        mean = float(rewards.mean())
        self.baseline = mean if self.baseline is None else (
            self.config.baseline_decay * self.baseline + (1 - self.config.baseline_decay) * mean)
        advantage = rewards - self.baseline
        self.model.train()
        inputs, targets, mask = encode([tuple(c) for c in candidates])
        logp_all = torch.log_softmax(self.model(inputs), -1)
        logp = logp_all.gather(-1, targets[..., None])[..., 0]
        seq_logp = (logp * mask).sum(1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        mean_entropy = (entropy * mask).sum() / mask.sum().clamp_min(1)
        loss = -(advantage * seq_logp).mean() - self.config.entropy * mean_entropy
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        metrics = {"reward": mean, "baseline": self.baseline, "entropy": float(mean_entropy.detach()),
                   "stage": float(self.stage + 1)}
        self._advance(evaluations)
        return metrics

    def _advance(self, evaluations: Sequence[Evaluation]) -> None:
        self.in_stage += len(evaluations)
        if self.stage + 1 >= len(self.tasks):
            return
        newest = self.tasks[self.stage]
        valid = [e.performance[newest] for e in evaluations if e.valid]
        solved = bool(valid) and statistics.fmean(valid) >= self.config.advance_at
        if solved or self.in_stage >= self.stage_budget:
            self.stage += 1
            self.in_stage = 0
            logger.debug("architect_curriculum", stage=self.stage + 1, task=self.tasks[self.stage])


def architect(*, seed: int, options: Mapping[str, Any]) -> Architect:
    """The ``architect`` generator's factory: ``catalog_tokens``, ``tasks`` and ``budget`` come
    from the discover command, its own settings (:class:`ArchitectConfig`) from
    ``options["generator_options"]`` (``--generator-option KEY=VALUE``)."""
    config = parse_options(ArchitectConfig, options.get("generator_options", {}), owner="generator 'architect'")
    return Architect(seed=seed, config=config, catalog=options.get("catalog_tokens", ()),
                     tasks=options.get("tasks", ("xor",)), budget=int(options.get("budget", 1)))
