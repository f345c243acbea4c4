"""Search over the blueprint grammar: the loop every generator runs, and two baselines.

Every generator spends the same budget the same way: :func:`run_search` asks it for a batch of
candidates, the Crucible scores them (an invalid candidate costs one evaluation like any other),
the generator observes the scores, until ``budget`` candidates have been evaluated. Published
NAS comparisons find random search a strong baseline (Li & Talwalkar 2019, "Random Search and
Reproducibility for Neural Architecture Search"; Yu et al. 2020, "Evaluating the Search Phase
of Neural Architecture Search"), so a learned Architect has to beat both baselines here:

* :class:`RandomSearch`: programs drawn from the grammar by a random walk;
* :class:`RegularizedEvolution`: aging evolution (Real et al. 2019, "Regularized Evolution for
  Image Classifier Architecture Search"): tournament selection of size S from a population of
  P, mutate the winner, add the child, remove the *oldest* member. Children of one batch are
  bred from the population as it stands, then added in order (the asynchronous variant the
  paper runs on many workers).
"""

from __future__ import annotations

import collections
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from attrs import field, frozen

from esper_core.contracts.factories import BlueprintGenerator
from esper_core.discovery import tokens as T
from esper_core.discovery.crucible import Crucible, Evaluation
from esper_core.discovery.grammar import MAX_TOKENS, GrammarError, Group, Layer, Node, Op, Program, parse, to_tokens
from esper_core.errors import ConfigError
from esper_core.options import int_at_least, parse_options, reject_all

logger = structlog.get_logger(__name__)

Tokens = tuple[str, ...]


#: What :func:`run_search` drives: the contract every ``GeneratorSpec`` factory returns.
Generator = BlueprintGenerator


# --------------------------------------------------------------------------------------------
# Random programs and mutations


_WIDTH_CHOICES = ("OUT_IN",) * 4 + tuple(T.WIDTHS)


def random_item(rng: random.Random, depth: int = 0, vector: bool = False) -> Node:
    """One random grammar item; ``vector`` biases towards what is valid after POOL_GLOBAL."""
    r = rng.random()
    if depth < 2 and r < 0.3 and not vector:
        if rng.random() < 0.7:
            return Group(T.RES_START, random_body(rng, depth + 1))
        body: list[Node] = [Op(T.POOL_GLOBAL), Layer(T.LINEAR, rng.choice(("OUT_D4", "OUT_D2", "OUT_IN")))]
        body += [Op(rng.choice(T.ACTIVATIONS)), Layer(T.LINEAR, "OUT_IN", zero_init=rng.random() < 0.5)]
        return Group(T.GATE_START, tuple(body))
    if r < 0.6:
        width = rng.choice(_WIDTH_CHOICES)
        if vector or rng.random() < 0.1:
            return Layer(T.LINEAR, width, zero_init=rng.random() < 0.2)
        kernel = rng.choice(tuple(T.KERNELS.values()))
        return Layer(T.CONV, width, kernel=kernel, dilation=2 if kernel > 1 and rng.random() < 0.15 else 1,
                     depthwise=rng.random() < 0.15, zero_init=rng.random() < 0.2)
    if r < 0.8:
        return Op(rng.choice(T.ACTIVATIONS))
    return Op(rng.choice((T.NORM, T.SCALE, T.POOL_AVG3, T.POOL_MAX3)))


def random_body(rng: random.Random, depth: int) -> tuple[Node, ...]:
    return tuple(random_item(rng, depth) for _ in range(rng.randint(1, 4)))


def random_program(rng: random.Random) -> Tokens:
    """A syntactically valid program of at most MAX_TOKENS tokens (its shapes may not fit)."""
    while True:
        tokens = to_tokens(Program(items=random_body(rng, 0)))
        if len(tokens) <= MAX_TOKENS:
            return tokens


def _nodes(items: tuple[Node, ...], path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    out = []
    for i, node in enumerate(items):
        out.append((*path, i))
        if isinstance(node, Group):
            out.extend(_nodes(node.body, (*path, i)))
    return out


def _edit(items: tuple[Node, ...], path: tuple[int, ...],
          fn: Callable[[tuple[Node, ...], int], tuple[Node, ...]]) -> tuple[Node, ...]:
    if len(path) == 1:
        return fn(items, path[0])
    i = path[0]
    group = items[i]
    assert isinstance(group, Group)
    return (*items[:i], Group(group.kind, _edit(group.body, path[1:], fn)), *items[i + 1:])


def mutate(tokens: Tokens, rng: random.Random) -> Tokens:
    """One random edit of a program: replace, insert, delete or wrap an item, or change a
    layer's width, kernel or zero-init. Unparseable parents are replaced by a random program."""
    try:
        program = parse(tokens)
    except GrammarError:
        return random_program(rng)
    items = program.items or (random_item(rng),)
    for _ in range(20):
        path = rng.choice(_nodes(items))
        kind = rng.choice(("replace", "insert", "delete", "wrap", "tweak", "tweak"))

        def apply(seq: tuple[Node, ...], i: int, kind: str = kind, depth: int = len(path) - 1) -> tuple[Node, ...]:
            node = seq[i]
            if kind == "replace":
                return (*seq[:i], random_item(rng, depth), *seq[i + 1:])
            if kind == "insert":
                return (*seq[:i + 1], random_item(rng, depth), *seq[i + 1:])
            if kind == "delete":
                return seq[:i] + seq[i + 1:] if len(seq) > 1 else seq
            if kind == "wrap":
                return (*seq[:i], Group(T.RES_START, (node,)), *seq[i + 1:]) if depth < 2 else seq
            if isinstance(node, Layer):
                choice = rng.random()
                if choice < 0.5:
                    node = Layer(node.kind, rng.choice(_WIDTH_CHOICES), kernel=node.kernel, dilation=node.dilation,
                                 depthwise=node.depthwise, zero_init=node.zero_init)
                elif choice < 0.8 and node.kernel is not None:
                    k = rng.choice(tuple(T.KERNELS.values()))
                    node = Layer(node.kind, node.width, kernel=k, dilation=node.dilation if k > 1 else 1,
                                 depthwise=node.depthwise, zero_init=node.zero_init)
                else:
                    node = Layer(node.kind, node.width, kernel=node.kernel, dilation=node.dilation,
                                 depthwise=node.depthwise, zero_init=not node.zero_init)
            elif isinstance(node, Op) and node.name in T.ACTIVATIONS:
                node = Op(rng.choice(T.ACTIVATIONS))
            return (*seq[:i], node, *seq[i + 1:])

        new = _edit(items, path, apply)
        child = to_tokens(Program(items=new)) if new else (T.IDENTITY,)
        if child != tokens and len(child) <= MAX_TOKENS:
            try:
                parse(child)
            except GrammarError:
                continue
            return child
    return random_program(rng)


class RandomSearch:
    """Independent random programs from the grammar."""

    def __init__(self, *, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def propose(self, n: int) -> list[Tokens]:
        return [random_program(self.rng) for _ in range(n)]

    def observe(self, candidates: Sequence[Tokens], evaluations: Sequence[Evaluation]) -> dict[str, float]:
        return {}


class RegularizedEvolution:
    """Aging evolution (Real et al. 2019) with population ``population`` and tournament ``sample``."""

    def __init__(self, *, seed: int = 0, population: int = 32, sample: int = 8) -> None:
        if population < 2 or not 1 <= sample <= population:
            raise ValueError(f"need population ≥ 2 and 1 ≤ sample ≤ population, got {population}, {sample}")
        self.rng = random.Random(seed)
        self.size = population
        self.sample = sample
        self.population: collections.deque[tuple[Tokens, float]] = collections.deque()

    def propose(self, n: int) -> list[Tokens]:
        out: list[Tokens] = []
        for _ in range(n):
            if len(self.population) + len(out) < self.size or not self.population:
                out.append(random_program(self.rng))
                continue
            contenders = self.rng.sample(list(self.population), min(self.sample, len(self.population)))
            parent = max(contenders, key=lambda c: c[1])[0]
            out.append(mutate(parent, self.rng))
        return out

    def observe(self, candidates: Sequence[Tokens], evaluations: Sequence[Evaluation]) -> dict[str, float]:
        for ev in evaluations:
            self.population.append((ev.tokens, ev.fitness))
            while len(self.population) > self.size:
                self.population.popleft()  # the oldest dies, whatever its fitness
        return {"population_best": max(f for _, f in self.population)}


def random_search(*, seed: int, options: Mapping[str, Any]) -> RandomSearch:
    """The ``random`` generator's factory (no options of its own)."""
    reject_all(options.get("generator_options"), owner="generator 'random'")
    return RandomSearch(seed=seed)


@frozen(kw_only=True)
class EvolutionOptions:
    """``--generator-option`` of the ``evolution`` generator."""

    population: int = field(default=32, validator=int_at_least(2))
    #: candidates drawn from the population for each tournament
    sample: int = field(default=8, validator=int_at_least(1))

    def __attrs_post_init__(self) -> None:
        if self.sample > self.population:
            raise ConfigError(f"sample = {self.sample} exceeds population = {self.population}")


def regularized_evolution(*, seed: int, options: Mapping[str, Any]) -> RegularizedEvolution:
    """The ``evolution`` generator's factory: :class:`EvolutionOptions` from
    ``options["generator_options"]``."""
    opts = parse_options(EvolutionOptions, options.get("generator_options", {}), owner="generator 'evolution'")
    return RegularizedEvolution(seed=seed, population=opts.population, sample=opts.sample)


# --------------------------------------------------------------------------------------------
# The loop


@frozen(kw_only=True)
class SearchStep:
    step: int
    evaluated: int
    best: float  # best fitness so far
    mean: float  # mean fitness of this step's candidates
    valid: float  # fraction of this step's candidates that were valid
    best_tokens: Tokens
    metrics: dict[str, float] = field(factory=dict)


@frozen(kw_only=True)
class SearchResult:
    steps: tuple[SearchStep, ...]
    evaluations: tuple[Evaluation, ...]
    hall_of_fame: tuple[Evaluation, ...]

    @property
    def best(self) -> Evaluation:
        return max(self.evaluations, key=lambda e: e.fitness)

    @property
    def best_novel(self) -> Evaluation | None:
        """The best candidate outside the catalog's redundancy radius (None: no novel one)."""
        novel = [e for e in self.evaluations if e.novel]
        return max(novel, key=lambda e: e.fitness) if novel else None

    @property
    def distinct_valid(self) -> int:
        """How many distinct token sequences compiled (a repeat of a structure counts once)."""
        return len({e.tokens for e in self.evaluations if e.valid})


def run_search(generator: Generator, crucible: Crucible, *, budget: int, batch_size: int,
               on_step: Callable[[SearchStep], Any] | None = None) -> SearchResult:
    """Spend ``budget`` evaluations in batches of ``batch_size`` (the last may be smaller)."""
    if budget < 1 or batch_size < 1:
        raise ValueError(f"budget and batch size must be ≥ 1, got {budget}, {batch_size}")
    steps: list[SearchStep] = []
    evaluations: list[Evaluation] = []
    best: Evaluation | None = None
    while len(evaluations) < budget:
        n = min(batch_size, budget - len(evaluations))
        candidates = generator.propose(n)
        if len(candidates) != n:
            raise ValueError(f"generator proposed {len(candidates)} candidates, asked for {n}")
        scored = crucible.evaluate(candidates)
        metrics = generator.observe(candidates, scored)
        evaluations.extend(scored)
        step_best = max(scored, key=lambda e: e.fitness)
        if best is None or step_best.fitness > best.fitness:
            best = step_best
        step = SearchStep(step=len(steps) + 1, evaluated=len(evaluations), best=best.fitness,
                          mean=statistics.fmean(e.fitness for e in scored),
                          valid=sum(e.valid for e in scored) / len(scored), best_tokens=best.tokens,
                          metrics=dict(metrics))
        steps.append(step)
        logger.debug("search_step", step=step.step, evaluated=step.evaluated, best=step.best, mean=step.mean)
        if on_step is not None:
            on_step(step)
    return SearchResult(steps=tuple(steps), evaluations=tuple(evaluations),
                        hall_of_fame=tuple(crucible.hall_of_fame.evaluations))
