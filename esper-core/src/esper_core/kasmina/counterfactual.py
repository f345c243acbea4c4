"""Validation with counterfactual credit for every seed (DESIGN §4).

For each validation batch the model runs once normally, keeping the activation that enters
each injection point. A seed's counterfactual then re-runs only the *suffix* from its slot with
the seed forced to another α; the prefix is shared, never recomputed.

* BLENDING/SHADOWING/PROBATIONARY seeds: ``contribution = metric(α) − metric(α = 0)``: the
  accuracy (points) lost when this seed alone is removed, everything else as is.
* TRAINING seeds: ``seed_gain = metric(α = 1) − metric(α = 0)``: what the seed would add if it
  were switched on (its forward is the host's, so the normal pass is the α = 0 side). This is
  the seed's *gain over the no-seed path*: the host has not adapted to the seed.
* From BLENDING on, ``contribution`` is the seed's *dependence*: once the downstream layers have
  trained with the seed in the forward, removing it also undoes their adaptation, so it
  overstates what the seed added (measured: a fossilized seed at 9.05 points of dependence in a
  model 2.80 points above its no-growth baseline). Neither is the gain over a model trained
  without growth; only a baseline episode measures that.

Both are means of *paired per-example differences* over the same validation examples
(``d_i = correct_i(α) − correct_i(α = 0)``, a fraction in [−1, 1] per example), so each comes
with its standard error ``sd(d)/√n`` (``*_se``, points). Pairing removes the example-difficulty
variance that two unpaired accuracies would carry: two models that agree on 95 % of 2,000 images
differ by a gain whose standard error is about 0.5 points, not the 1.5 of two independent
accuracies. A task that offers ``correct_per_example(output, target)`` (a float tensor, one
value per example) is paired per example; for one that does not, each validation batch is one
paired unit (coarser: fewer units, a larger standard error).

With more than ``shapley_threshold`` blended seeds, removal credits miss interactions, so each
blended seed instead gets its Shapley value, estimated by permutation sampling (Castro, Gómez &
Tejada 2009, "Polynomial calculation of the Shapley value based on sampling"): for ``M``
random orders (a seeded ``random.Random``, so the estimate is reproducible), a seed's credit is
the mean over orders of ``v(S ∪ {i}) − v(S)``, ``S`` the seeds before it; ``v(S)`` is the
accuracy with the seeds in ``S`` at their α and the other blended seeds at α = 0. Each order's
credits sum to ``v(all) − v(none)`` exactly (efficiency); the estimate's error shrinks as
``1/√M``. Every distinct coalition is evaluated once per batch, starting from the first slot
(in forward order) whose seed it switches on, on the activations of the "all blended seeds
off" pass.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping

import torch
from attrs import field, frozen
from torch import Tensor

from esper_core.contracts.stages import BLENDED_STAGES, SeedStage
from esper_core.kasmina.model import MorphogeneticModel
from esper_core.kasmina.slot import SeedSlot

LossFn = Callable[[Tensor, Tensor], Tensor]
CorrectFn = Callable[[Tensor, Tensor], tuple[Tensor, int]]
ExampleFn = Callable[[Tensor, Tensor], Tensor]

SHAPLEY_THRESHOLD = 4
SHAPLEY_PERMUTATIONS = 32


@frozen(kw_only=True)
class ValidationResult:
    """Validation loss and accuracy (percent) plus per-seed counterfactual credit (points)."""

    loss: float
    accuracy: float
    contributions: Mapping[str, float] = field(factory=dict)
    seed_gains: Mapping[str, float] = field(factory=dict)
    #: standard errors (points) of the paired means above (Shapley credits have none)
    contribution_ses: Mapping[str, float] = field(factory=dict)
    seed_gain_ses: Mapping[str, float] = field(factory=dict)
    #: "removal" or "shapley" (how blended contributions were measured).
    method: str = "removal"


@contextlib.contextmanager
def _forced(model: MorphogeneticModel, alphas: Mapping[str, float]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for name, alpha in alphas.items():
            stack.enter_context(model.force_alpha(name, alpha))
        yield


class _Paired:
    """Running sums of paired differences ``d`` (fractions) over units, on the device."""

    def __init__(self) -> None:
        self.sum: Tensor | float = 0.0
        self.sq: Tensor | float = 0.0
        self.units = 0

    def add(self, d: Tensor) -> None:
        d = d.float()
        self.sum = self.sum + d.sum()
        self.sq = self.sq + (d * d).sum()
        self.units += int(d.numel())

    def standard_error(self) -> float:
        """Standard error of the mean difference, in points."""
        n = self.units
        if n < 2:
            return float("inf")
        mean = float(self.sum) / n
        var = max(0.0, (float(self.sq) - n * mean * mean) / (n - 1))
        return 100.0 * math.sqrt(var / n)


def _permutations(names: list[str], count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.sample(names, len(names)) for _ in range(count)]


def evaluate(
    model: MorphogeneticModel,
    batches: Iterable[tuple[Tensor, Tensor]],
    loss_fn: LossFn,
    correct_fn: CorrectFn,
    *,
    epoch: int = 0,
    record: bool = True,
    shapley_threshold: int = SHAPLEY_THRESHOLD,
    shapley_permutations: int = SHAPLEY_PERMUTATIONS,
    shapley_seed: int = 0,
    example_fn: ExampleFn | None = None,
) -> ValidationResult:
    """One validation pass with counterfactuals; ``record`` stores them in the slots' state.

    ``example_fn`` gives per-example correctness (a task's ``correct_per_example``) for the
    paired standard errors; without it each batch is one paired unit."""
    slots = model.all_slots()
    blended = blended_slots(model)
    training = [s for s in slots if s.stage is SeedStage.TRAINING and s.seed is not None]
    shapley = len(blended) > shapley_threshold
    point = {s.name: model.point_index(s) for s in slots}
    coalitions: list[frozenset[str]] = []
    perms: list[list[str]] = []
    if shapley:
        perms = _permutations([s.name for s in blended], shapley_permutations, shapley_seed)
        seen: set[frozenset[str]] = set()
        for order in perms:
            for k in range(1, len(order)):
                c = frozenset(order[:k])
                if c not in seen:
                    seen.add(c)
                    coalitions.append(c)
        coalitions.sort(key=lambda c: sorted(c))

    total_loss: Tensor | float = 0.0
    correct: Tensor | float = 0.0
    count = 0
    gain_correct: dict[str, Tensor | float] = {s.name: 0.0 for s in training}
    removed_correct: dict[str, Tensor | float] = {s.name: 0.0 for s in blended}
    gain_pairs = {s.name: _Paired() for s in training}
    removed_pairs = {s.name: _Paired() for s in blended}

    def scores(output: Tensor, target: Tensor, n_ok: Tensor | float, n: int) -> Tensor:
        # Per-example correctness when the task gives it, else the batch as one unit.
        if example_fn is not None:
            return example_fn(output, target).float()
        return torch.as_tensor(n_ok, dtype=torch.float32).reshape(1) / max(1, n)
    coalition_correct: dict[frozenset[str], Tensor | float] = {c: 0.0 for c in coalitions}
    none_correct: Tensor | float = 0.0

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, y in batches:
                cache: list[Tensor] = []
                out = model.run_from(model.stem(x), 0, cache)
                n_ok, n = correct_fn(out, y)
                total_loss = total_loss + loss_fn(out, y) * n
                correct = correct + n_ok
                count += n
                base = scores(out, y, n_ok, n) if (training or (blended and not shapley)) else None
                for s in training:
                    p = point[s.name]
                    with model.seed_path_statistics(s), model.force_alpha(s.name, 1.0):
                        on = model.run_from(cache[p], p)
                    n_on = correct_fn(on, y)[0]
                    gain_correct[s.name] = gain_correct[s.name] + n_on
                    assert base is not None  # computed whenever there are TRAINING seeds
                    gain_pairs[s.name].add(scores(on, y, n_on, n) - base)
                if not shapley:
                    for s in blended:
                        p = point[s.name]
                        with model.force_alpha(s.name, 0.0):
                            off_out = model.run_from(cache[p], p)
                        n_off = correct_fn(off_out, y)[0]
                        removed_correct[s.name] = removed_correct[s.name] + n_off
                        assert base is not None  # computed whenever blended seeds are removed one by one
                        removed_pairs[s.name].add(base - scores(off_out, y, n_off, n))
                    continue
                # Shapley: an "all blended seeds off" pass, then each coalition's suffix.
                off = {s.name: 0.0 for s in blended}
                first = min(point[s.name] for s in blended)
                off_cache: list[Tensor] = []
                with _forced(model, off):
                    none_out = model.run_from(cache[first], first, off_cache)
                none_correct = none_correct + correct_fn(none_out, y)[0]
                for c in coalitions:
                    start = min(point[name] for name in c)
                    with _forced(model, {k: v for k, v in off.items() if k not in c}):
                        o = model.run_from(off_cache[start - first], start)
                    coalition_correct[c] = coalition_correct[c] + correct_fn(o, y)[0]
    finally:
        model.train(was_training)

    def pct(value: Tensor | float) -> float:
        return 100.0 * float(value) / max(1, count)

    accuracy = pct(correct)
    seed_gains = {name: pct(v) - accuracy for name, v in gain_correct.items()}
    gain_ses = {name: pairs.standard_error() for name, pairs in gain_pairs.items()}
    contribution_ses: dict[str, float] = {}
    if shapley:
        contributions = _shapley(perms, accuracy, pct(none_correct),
                                 {c: pct(v) for c, v in coalition_correct.items()})
    else:
        contributions = {name: accuracy - pct(v) for name, v in removed_correct.items()}
        contribution_ses = {name: pairs.standard_error() for name, pairs in removed_pairs.items()}
    loss = float(total_loss) / max(1, count)
    if record:
        model.record_validation(contributions=contributions, seed_gains=seed_gains, epoch=epoch,
                                contribution_ses=contribution_ses, seed_gain_ses=gain_ses)
    return ValidationResult(loss=loss, accuracy=accuracy, contributions=contributions,
                            seed_gains=seed_gains, contribution_ses=contribution_ses,
                            seed_gain_ses=gain_ses, method="shapley" if shapley else "removal")


def measure_accuracy(model: MorphogeneticModel, batches: Iterable[tuple[Tensor, Tensor]],
                     correct_fn: CorrectFn) -> float:
    """Accuracy (percent) of the model as it stands on ``batches``: one plain pass, no
    counterfactuals, nothing recorded (the held-out test split)."""
    return measure(model, batches, correct_fn)[0]


def measure(model: MorphogeneticModel, batches: Iterable[tuple[Tensor, Tensor]], correct_fn: CorrectFn,
            loss_fn: LossFn | None = None) -> tuple[float, float | None]:
    """Accuracy (percent) and, given ``loss_fn``, mean loss of the model as it stands on
    ``batches`` (each batch's loss weighted by the count it judges, as in :func:`evaluate`)."""
    correct: Tensor | float = 0.0
    total_loss: Tensor | float = 0.0
    count = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, y in batches:
                out = model(x)
                n_ok, n = correct_fn(out, y)
                correct = correct + n_ok
                if loss_fn is not None:
                    total_loss = total_loss + loss_fn(out, y) * n
                count += n
    finally:
        model.train(was_training)
    loss = float(total_loss) / max(1, count) if loss_fn is not None else None
    return 100.0 * float(correct) / max(1, count), loss


def _shapley(perms: list[list[str]], full: float, none: float,
             values: Mapping[frozenset[str], float]) -> dict[str, float]:
    def v(c: frozenset[str], n: int) -> float:
        if not c:
            return none
        if len(c) == n:
            return full
        return values[c]

    credit: dict[str, float] = {}
    for order in perms:
        n = len(order)
        for k, name in enumerate(order):
            before = frozenset(order[:k])
            credit[name] = credit.get(name, 0.0) + v(before | {name}, n) - v(before, n)
    return {name: total / len(perms) for name, total in sorted(credit.items())}


def blended_slots(model: MorphogeneticModel) -> list[SeedSlot]:
    """The slots whose seeds a validation pass credits with a contribution."""
    return [s for s in model.all_slots() if s.stage in BLENDED_STAGES and s.seed is not None]
