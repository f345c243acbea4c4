"""The Crucible: score blueprint candidates on the micro-curriculum (DESIGN §9).

For each task a candidate is compiled for the task's slot, put into the task's scaffold and
trained for a fixed number of full-batch Adam steps. All candidates of a batch are trained
together as one computation per task (:func:`esper_core.discovery.batched.train_mixed`: the
candidates of one structure side by side, every structure in the same loop), cut into parts of
at most ``max_group`` candidates and ``chunk_elements`` activations. The fitness of a valid
candidate is

    performance − param_weight · params / param_scale − latency_weight · latency_ms
                + stability_bonus · stable − redundancy_weight · redundancy

* performance: chance-corrected held-out accuracy ``(acc − 1/K) / (1 − 1/K)``, averaged over
  the tasks (0 on a task where training was unstable);
* params: the candidate's parameters, averaged over the tasks' slot widths;
* latency_ms: measured forward time of the compiled candidate on the probe batch, summed over
  the tasks (median of several runs, once per structure). It is the one measured term: set
  ``latency_weight = 0`` for runs that are bit-for-bit reproducible;
* stable: every training loss finite and below 10⁴ and every parameter finite, on every task;
* redundancy: the largest linear CKA (Kornblith et al. 2019, "Similarity of Neural Network
  Representations Revisited") between the candidate's outputs on the probe inputs and those of
  a hall-of-fame member, averaged over tasks. The hall of fame keeps the best distinct
  candidates seen so far; a candidate is compared with it as it stood before its own batch.
  After :meth:`Crucible.seed_catalog` the catalog's blueprints count as members too (never
  evicted, never reported as discoveries), and a candidate whose tokens are a catalog
  blueprint's has redundancy 1: rediscovering the catalog earns nothing.

A valid candidate is *novel* unless its tokens are a catalog blueprint's or its task-averaged
CKA to some catalog blueprint is at least ``novelty_radius`` (default 0.95: the same function,
up to the spread of training the same design from another initialisation).

An invalid candidate scores −1 and is not trained. Initial weights come from the crucible seed
and the candidate's position in the evaluation stream, data from the crucible seed: the same
seed and candidates give the same scores.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence

import structlog
import torch
from attrs import define, field, frozen
from torch import Tensor

from esper_core.discovery.batched import Scaffold, TrainData, TrainResult, train_mixed
from esper_core.discovery.compile import compile_program
from esper_core.discovery.curriculum import CrucibleTask, get_tasks
from esper_core.discovery.grammar import CheckedProgram, GrammarError, check, parse, structure_key, to_tokens
from esper_core.options import int_at_least, non_negative_number, number_in

logger = structlog.get_logger(__name__)

INVALID_FITNESS = -1.0


@frozen(kw_only=True)
class FitnessWeights:
    param_weight: float = field(default=0.05, validator=non_negative_number())
    param_scale: float = field(default=1000.0, validator=non_negative_number())
    latency_weight: float = field(default=0.1, validator=non_negative_number())
    stability_bonus: float = field(default=0.1, validator=non_negative_number())
    redundancy_weight: float = field(default=0.1, validator=non_negative_number())


@frozen(kw_only=True)
class CrucibleConfig:
    #: curriculum tasks to score on, in this order (None: every task of the curriculum)
    tasks: tuple[str, ...] | None = field(default=None, converter=lambda v: None if v is None else tuple(v))
    weights: FitnessWeights = field(factory=FitnessWeights)
    seed: int = field(default=0, validator=int_at_least(0))
    hall_of_fame: int = field(default=16, validator=int_at_least(1))
    #: most candidates trained in one batched computation
    max_group: int = field(default=256, validator=int_at_least(1))
    #: most training activations (samples × slot channels × slot positions × candidates) in one
    #: batched computation of a task: a larger batch falls out of the CPU caches and runs slower
    #: per candidate (the image task: 0.26 ms per candidate-step at 16 candidates, 0.70 at 256)
    chunk_elements: int = field(default=2**20, validator=int_at_least(1))
    #: override every task's training steps (None: the task's own)
    steps: int | None = None
    #: a candidate within this CKA of a catalog blueprint (or with its tokens) is not novel
    novelty_radius: float = field(default=0.95, validator=number_in(0.0, 1.0))


@frozen(kw_only=True)
class Evaluation:
    """The Crucible's verdict on one candidate."""

    tokens: tuple[str, ...]
    fitness: float
    valid: bool
    reason: str | None = None
    performance: dict[str, float] = field(factory=dict)  # per task, chance-corrected
    params: float = 0.0
    latency_ms: float = 0.0
    stable: bool = False
    redundancy: float = 0.0
    #: largest task-averaged CKA to a catalog blueprint (1 for a catalog blueprint's tokens)
    catalog_similarity: float = 0.0
    #: valid and outside the catalog's redundancy radius (see the module docstring)
    novel: bool = False

    @property
    def mean_performance(self) -> float:
        return statistics.fmean(self.performance.values()) if self.performance else 0.0


def linear_cka(a: Tensor, b: Tensor) -> Tensor:
    """Linear CKA between every representation in ``a`` (M, P, D) and in ``b`` (H, P, E).

    Uses centred Gram matrices over the P probe inputs, so feature widths may differ; a
    constant representation has similarity 0 to everything. Returns (M, H)."""
    def centred_gram(x: Tensor) -> Tensor:
        x = x.double() - x.double().mean(1, keepdim=True)
        g = x @ x.transpose(1, 2)
        return g.flatten(1)

    ga, gb = centred_gram(a), centred_gram(b)
    na, nb = ga.norm(dim=1, keepdim=True), gb.norm(dim=1, keepdim=True)
    ga = torch.where(na > 1e-12, ga / na.clamp_min(1e-12), torch.zeros_like(ga))
    gb = torch.where(nb > 1e-12, gb / nb.clamp_min(1e-12), torch.zeros_like(gb))
    return (ga @ gb.T).float()


@define
class HallOfFame:
    """The ``size`` best distinct candidates so far, with their probe outputs per task."""

    size: int
    entries: list[tuple[Evaluation, dict[str, Tensor]]] = field(factory=list)
    #: the catalog's trained blueprints: members for redundancy, never evicted or reported
    catalog: list[tuple[Evaluation, dict[str, Tensor]]] = field(factory=list)
    #: every catalog token form, trainable on the curriculum or not
    catalog_tokens: set[tuple[str, ...]] = field(factory=set)

    def redundancy(self, probes: dict[str, Tensor]) -> Tensor:
        """Largest task-averaged CKA of each of M candidates (``probes[task]``: (M, P, D)) to a
        member or a catalog blueprint."""
        return _most_similar(probes, self.entries + self.catalog)

    def catalog_similarity(self, probes: dict[str, Tensor]) -> Tensor:
        """Largest task-averaged CKA of each of M candidates to a catalog blueprint."""
        return _most_similar(probes, self.catalog)

    def add(self, evaluation: Evaluation, probes: dict[str, Tensor]) -> None:
        for i, (other, _) in enumerate(self.entries):
            if other.tokens == evaluation.tokens:
                if evaluation.fitness <= other.fitness:
                    return
                del self.entries[i]
                break
        self.entries.append((evaluation, probes))
        self.entries.sort(key=lambda e: -e[0].fitness)
        del self.entries[self.size:]

    @property
    def evaluations(self) -> list[Evaluation]:
        return [e for e, _ in self.entries]


def _most_similar(probes: dict[str, Tensor], members: list[tuple[Evaluation, dict[str, Tensor]]]) -> Tensor:
    m = next(iter(probes.values())).shape[0]
    if not members:
        return torch.zeros(m)
    sims = torch.stack([
        linear_cka(probes[task], torch.stack([e[1][task] for e in members]))
        for task in probes
    ]).mean(0)
    return sims.max(1).values


class Crucible:
    """Evaluates batches of candidates; keeps the hall of fame across calls."""

    def __init__(self, config: CrucibleConfig | None = None,
                 curriculum: Mapping[str, CrucibleTask] | None = None) -> None:
        """``curriculum``: the tasks to choose from (default: the installed discovery topology's)."""
        self.config = config or CrucibleConfig()
        self.tasks: tuple[CrucibleTask, ...] = get_tasks(self.config.tasks, curriculum)
        self.data: dict[str, TrainData] = {t.name: t.make_data(self.config.seed) for t in self.tasks}
        self.hall_of_fame = HallOfFame(self.config.hall_of_fame)
        self.evaluated = 0  # candidates seen: each one's initial weights depend on its position
        self._latency: dict[str, float] = {}

    def check(self, tokens: Sequence[str]) -> dict[str, CheckedProgram]:
        """The candidate checked for every task's slot; raises GrammarError naming the task."""
        out = {}
        for task in self.tasks:
            try:
                out[task.name] = check(tokens, task.slot_shape)
            except GrammarError as exc:
                raise GrammarError(f"{task.name} slot {task.slot_shape}: {exc}") from None
        return out

    def evaluate(self, candidates: Sequence[Sequence[str]]) -> list[Evaluation]:
        """Score ``candidates`` (in order); every one counts against a search's budget."""
        first = self.evaluated
        self.evaluated += len(candidates)
        results: list[Evaluation | None] = [None] * len(candidates)
        groups: dict[str, list[int]] = {}
        checked: dict[int, dict[str, CheckedProgram]] = {}
        for i, tokens in enumerate(candidates):
            try:
                checked[i] = self.check(tokens)
            except GrammarError as exc:
                results[i] = Evaluation(tokens=tuple(tokens), fitness=INVALID_FITNESS, valid=False,
                                        reason=str(exc))
                continue
            groups.setdefault(structure_key(tokens), []).append(i)
        key_of = {i: key for key, members in groups.items() for i in members}
        # Structures stay contiguous (in order of first appearance) so each chunk trains every
        # structure it holds once, on one slice of the model axis.
        order = [i for members in groups.values() for i in members]
        scored: list[tuple[int, Evaluation, dict[str, Tensor]]] = []
        for start in range(0, len(order), self.config.max_group):
            chunk = order[start:start + self.config.max_group]
            runs: list[list[int]] = []
            for i in chunk:
                if runs and key_of[runs[-1][0]] == key_of[i]:
                    runs[-1].append(i)
                else:
                    runs.append([i])
            scored.extend(self._score_chunk(runs, checked, first))
        redundancy, similarity = self._similarity([p for _, _, p in scored])
        catalog = self.hall_of_fame.catalog_tokens
        w = self.config.weights
        for (i, ev, _), red, sim in zip(scored, redundancy, similarity, strict=True):
            if ev.tokens in catalog:
                red = sim = 1.0
            fitness = ev.fitness - w.redundancy_weight * red
            results[i] = Evaluation(tokens=ev.tokens, fitness=fitness, valid=True, performance=ev.performance,
                                    params=ev.params, latency_ms=ev.latency_ms, stable=ev.stable,
                                    redundancy=red, catalog_similarity=sim,
                                    novel=sim < self.config.novelty_radius)
        for (i, _, probes) in scored:
            final = results[i]
            assert final is not None
            self.hall_of_fame.add(final, probes)
        return [r for r in results if r is not None]

    def _similarity(self, probes: list[dict[str, Tensor]]) -> tuple[list[float], list[float]]:
        """Redundancy and catalog similarity of each candidate."""
        if not probes:
            return [], []
        stacked = {task: torch.stack([p[task] for p in probes]) for task in probes[0]}
        return ([float(v) for v in self.hall_of_fame.redundancy(stacked)],
                [float(v) for v in self.hall_of_fame.catalog_similarity(stacked)])

    def seed_catalog(self, catalog: Sequence[Sequence[str]]) -> list[Evaluation]:
        """Train the catalog's blueprints (their token forms) and keep them in the hall of fame
        as the reference for redundancy and novelty; call before a search. They cost no
        budget and take their initial weights from positions of their own (the search's
        candidates start from the same weights as without a catalog). A token form the
        curriculum cannot build still counts for identity; returns the catalog's evaluations."""
        forms = list(dict.fromkeys(tuple(t) for t in catalog))
        checked: dict[int, dict[str, CheckedProgram]] = {}
        out = []
        groups: list[list[int]] = []
        for i, tokens in enumerate(forms):
            try:
                checked[i] = self.check(tokens)
            except GrammarError as exc:
                self.hall_of_fame.catalog_tokens.add(_canonical(tokens))
                logger.info("catalog_blueprint_not_trainable", tokens=" ".join(tokens), reason=str(exc))
                continue
            self.hall_of_fame.catalog_tokens.add(checked[i][self.tasks[0].name].tokens)
            groups.append([i])
        trained = self._score_chunk(groups, checked, -len(forms)) if groups else []
        for _, ev, probes in trained:
            self.hall_of_fame.catalog.append((ev, probes))
            out.append(ev)
        return out

    def _score_chunk(self, groups: list[list[int]], checked: dict[int, dict[str, CheckedProgram]],
                     first: int) -> list[tuple[int, Evaluation, dict[str, Tensor]]]:
        """Train the candidates of ``groups`` (one structure each) together on every task."""
        members = [i for group in groups for i in group]
        performance: dict[str, Tensor] = {}
        stable = torch.ones(len(members), dtype=torch.bool)
        probes: dict[str, Tensor] = {}
        for t_index, task in enumerate(self.tasks):
            models = []
            for i in members:
                torch.manual_seed(_init_seed(self.config.seed, first + i, t_index))
                models.append(Scaffold(task.make_stem(task.width), compile_program(checked[i][task.name]),
                                       task.make_head()))
            result = self._train(task, models, [len(group) for group in groups])
            chance = 1.0 / task.n_classes
            perf = (result.accuracy - chance) / (1.0 - chance)
            performance[task.name] = torch.where(result.stable, perf, torch.zeros_like(perf))
            stable &= result.stable
            probes[task.name] = torch.nan_to_num(result.probe, nan=0.0, posinf=0.0, neginf=0.0)
        w = self.config.weights
        out = []
        j = 0
        for group in groups:
            programs = checked[group[0]]
            tokens = programs[self.tasks[0].name].tokens
            params = statistics.fmean(p.params for p in programs.values())
            latency = self._measure_latency(structure_key(tokens), programs) if w.latency_weight > 0 else 0.0
            for i in group:
                task_perf = {name: float(v[j]) for name, v in performance.items()}
                is_stable = bool(stable[j])
                base = (statistics.fmean(task_perf.values()) - w.param_weight * params / max(w.param_scale, 1e-12)
                        - w.latency_weight * latency + w.stability_bonus * is_stable)
                ev = Evaluation(tokens=tokens, fitness=base, valid=True, performance=task_perf, params=params,
                                latency_ms=latency, stable=is_stable)
                out.append((i, ev, {name: p[j] for name, p in probes.items()}))
                j += 1
        return out

    def _train(self, task: CrucibleTask, models: list[Scaffold], sizes: list[int]) -> TrainResult:
        """Train ``models`` (runs of ``sizes`` models share a structure) in cache-sized parts."""
        data = self.data[task.name]
        per_model = data.x_train.shape[0] * task.width * max(1, math.prod(task.slot_spatial))
        limit = max(1, self.config.chunk_elements // per_model)
        parts: list[list[list[Scaffold]]] = [[]]
        start, in_part = 0, 0
        for size in sizes:
            while size:
                if in_part == limit:
                    parts.append([])
                    in_part = 0
                take = min(size, limit - in_part)
                parts[-1].append(models[start:start + take])
                start, size, in_part = start + take, size - take, in_part + take
        results = [train_mixed(part, data, steps=self.config.steps or task.steps, lr=task.lr) for part in parts]
        if len(results) == 1:
            return results[0]
        return TrainResult(losses=torch.cat([r.losses for r in results], 1),
                           accuracy=torch.cat([r.accuracy for r in results]),
                           stable=torch.cat([r.stable for r in results]),
                           probe=torch.cat([r.probe for r in results]))

    def _measure_latency(self, key: str, programs: dict[str, CheckedProgram]) -> float:
        if key not in self._latency:
            total = 0.0
            for task in self.tasks:
                module = compile_program(programs[task.name]).eval()
                x = torch.randn(32, *task.slot_shape, generator=torch.Generator().manual_seed(0))
                times = []
                with torch.no_grad():
                    module(x)
                    for _ in range(5):
                        start = time.perf_counter()
                        module(x)
                        times.append(time.perf_counter() - start)
                total += statistics.median(times) * 1000.0
            self._latency[key] = total
        return self._latency[key]


def _canonical(tokens: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return to_tokens(parse(tokens))
    except GrammarError:
        return tokens


def _init_seed(seed: int, position: int, task_index: int) -> int:
    # A fixed mix of the three integers: each candidate's initial weights are its own.
    return (seed * 1_000_003 + position * 7_919 + task_index * 104_729) % (2**31 - 1)
