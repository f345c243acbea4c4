"""Crucible throughput: batched same-structure training vs a per-model Python loop, and mixed
structures (random search) vs one structure on the three-task curriculum.

The workload of the issue: the XOR task, a 2→16 stem, the candidate ``RELU`` at width 16 and a
16→2 head (the 2-16-2 MLP), 100 full-batch Adam steps per candidate, one thread. In each of
``REPEATS`` rounds the two sides alternate (A, B, B, A ...) so load drift hits both:

* ``batched``: :func:`esper_core.discovery.batched.train_batched` on 256 candidates at once;
* ``loop``: :func:`esper_core.discovery.batched.train_single` (the plain PyTorch loop: one
  ``nn.Module`` and one ``torch.optim.Adam`` per candidate) on ``LOOP_MODELS`` candidates, the
  same work per candidate.

Both report candidates per second; ``ratio`` is batched / loop per round (median, min, max).
``crucible`` times the whole :meth:`Crucible.evaluate` (checking, compiling, grouping, training,
evaluation, probes, hall of fame) on the same 256 candidates. Goals: ≥ 2,000 candidates/s
batched and ≥ 100× the loop.

The search workload (issue 28): :meth:`Crucible.evaluate` on the first ``MIXED_CANDIDATES``
proposals of random search (generator seed 0; about half are invalid and cost no training,
about 96 of 256 are distinct valid structures) on the three-task curriculum (xor, temporal,
image), 100 steps per task, crucible seed 0, latency weight 0 (the one measured term, left out
so the work is the same every round), one thread, ``MIXED_REPEATS`` rounds alternating with
the same evaluation of ``MIXED_CANDIDATES`` copies of ``RELU`` (the structure above):
``random_candidates_per_s``, ``same_structure_candidates_per_s`` (medians) and their ratio per
round. Goal: random ≥ 0.5 × same structure.

``RELU`` has no weights, so its copies do almost no arithmetic: the ratio above compares random
structures with the cheapest one. Two figures put it in proportion: the same rate for
``MIXED_CANDIDATES`` copies of a 3×3 convolution (``CONV_TOKENS``, a typical valid candidate),
and each workload's achieved GFLOP/s — the floating-point operations of its matrix products and
convolutions (torch's ``FlopCounterMode``, each distinct structure counted alone), over its
wall time. The count is taken at 1 and 2 steps per task; the evaluation is linear in steps, so
``STEPS`` cost f₁ + (STEPS − 1)·(f₂ − f₁).

Run: ``python benchmarks/bench_crucible.py`` (prints one JSON object).
"""
from __future__ import annotations

import json
import os
import statistics
import time

import torch

from esper_core.discovery.batched import Scaffold, train_batched, train_single
from esper_core.discovery.compile import compile_program
from esper_core.discovery.crucible import Crucible, CrucibleConfig, FitnessWeights
from esper_core.discovery.curriculum import installed_tasks
from esper_core.discovery.search import RandomSearch

CANDIDATES = 256
LOOP_MODELS = 16
STEPS = 100
REPEATS = int(os.environ.get("BENCH_CRUCIBLE_REPEATS", "7"))
TOKENS = ("RELU",)
CONV_TOKENS = ("CONV", "KERNEL_3", "OUT_IN", "RELU")
MIXED_CANDIDATES = int(os.environ.get("BENCH_CRUCIBLE_MIXED_CANDIDATES", "256"))
MIXED_REPEATS = int(os.environ.get("BENCH_CRUCIBLE_MIXED_REPEATS", "3"))
TASKS = installed_tasks()


def _models(n: int, offset: int = 0) -> list[Scaffold]:
    task = TASKS["xor"]
    out = []
    for i in range(n):
        torch.manual_seed(offset + i)
        out.append(Scaffold(task.make_stem(task.width), compile_program(TOKENS, task.slot_shape), task.make_head()))
    return out


def _rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def _search_rate(candidates: list[tuple[str, ...]]) -> float:
    """Candidates/s of one :meth:`Crucible.evaluate` of ``candidates`` on the search workload."""
    evaluator = Crucible(CrucibleConfig(tasks=("xor", "temporal", "image"), seed=0, steps=STEPS,
                                        weights=FitnessWeights(latency_weight=0.0)))
    return _rate(lambda: evaluator.evaluate(candidates), len(candidates))


def _search_flops(candidates: list[tuple[str, ...]]) -> float:
    """The arithmetic the search workload's evaluation of ``candidates`` needs: matrix-product
    and convolution FLOPs of each distinct structure evaluated alone, times its copies.

    Counted on one candidate at a time because torch's counter over-counts grouped
    convolutions' backward (the batched paths' per-candidate count grew from 5.5 to 21 GFLOP as
    8 → 128 copies shared a call), and alone is the work any evaluator must do."""
    from collections import Counter

    from torch.utils.flop_counter import FlopCounterMode

    def count(tokens: tuple[str, ...], steps: int) -> int:
        evaluator = Crucible(CrucibleConfig(tasks=("xor", "temporal", "image"), seed=0, steps=steps,
                                            weights=FitnessWeights(latency_weight=0.0)))
        with FlopCounterMode(display=False) as counter:
            evaluator.evaluate([tokens])
        return counter.get_total_flops()

    total = 0.0
    for tokens, copies in Counter(candidates).items():
        one, two = count(tokens, 1), count(tokens, 2)
        total += copies * (one + (STEPS - 1) * (two - one))
    return total


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    torch.set_num_threads(1)
    task = TASKS["xor"]
    data = task.make_data(0)
    lr = task.lr
    train_batched(_models(CANDIDATES), data, steps=5, lr=lr)  # warm-up
    train_single(_models(1)[0], data, steps=5, lr=lr)
    batched, loop, ratios, crucible = [], [], [], []
    for r in range(REPEATS):
        def run_batched(offset: int = r * 1000) -> None:
            models = _models(CANDIDATES, offset=offset)
            start = time.perf_counter()
            train_batched(models, data, steps=STEPS, lr=lr)
            batched.append(CANDIDATES / (time.perf_counter() - start))

        def run_loop(offset: int = r * 1000) -> None:
            models = _models(LOOP_MODELS, offset=offset)
            start = time.perf_counter()
            for model in models:
                train_single(model, data, steps=STEPS, lr=lr)
            loop.append(LOOP_MODELS / (time.perf_counter() - start))

        order = (run_batched, run_loop) if r % 2 == 0 else (run_loop, run_batched)
        for fn in order:
            fn()
        ratios.append(batched[-1] / loop[-1])
        evaluator = Crucible(CrucibleConfig(tasks=("xor",), seed=r, weights=FitnessWeights(latency_weight=0.0)))
        crucible.append(_rate(lambda evaluator=evaluator: evaluator.evaluate([TOKENS] * CANDIDATES), CANDIDATES))
    random, same, conv, mixed_ratios = [], [], [], []
    proposals = RandomSearch(seed=0).propose(MIXED_CANDIDATES)
    for r in range(MIXED_REPEATS):
        def run_random() -> None:
            random.append(_search_rate(proposals))

        def run_same() -> None:
            same.append(_search_rate([TOKENS] * MIXED_CANDIDATES))

        def run_conv() -> None:
            conv.append(_search_rate([CONV_TOKENS] * MIXED_CANDIDATES))

        for mixed in (run_random, run_same, run_conv) if r % 2 == 0 else (run_conv, run_same, run_random):
            mixed()
        mixed_ratios.append(random[-1] / same[-1])
    searched: dict[str, list[tuple[str, ...]]] = {
        "random": list(proposals), "same": [TOKENS] * MIXED_CANDIDATES, "conv": [CONV_TOKENS] * MIXED_CANDIDATES}
    flops = {name: _search_flops(c) for name, c in searched.items()}

    def gflops(name: str, rate: float) -> float:
        return flops[name] / (MIXED_CANDIDATES / rate) / 1e9
    result = {
        "workload": f"xor, 2→16→ReLU→16→2, {STEPS} Adam steps, {CANDIDATES} candidates, 1 thread",
        "repeats": REPEATS,
        "batched_candidates_per_s": _summary(batched),
        "loop_candidates_per_s": _summary(loop),
        "ratio_batched_over_loop": _summary(ratios),
        "crucible_evaluate_candidates_per_s": _summary(crucible),
        "search_workload": (f"Crucible.evaluate of {MIXED_CANDIDATES} candidates, xor+temporal+image, {STEPS} steps "
                            "per task, crucible seed 0, latency weight 0, 1 thread; random: RandomSearch(seed=0) "
                            f"proposals; same structure: {MIXED_CANDIDATES} × {' '.join(TOKENS)} (conv: "
                            f"{' '.join(CONV_TOKENS)})"),
        "search_repeats": MIXED_REPEATS,
        "random_candidates_per_s": statistics.median(random),
        "same_structure_candidates_per_s": statistics.median(same),
        "random_over_same_structure": _summary(mixed_ratios),
        "same_structure_conv_candidates_per_s": statistics.median(conv),
        "random_over_same_structure_conv": statistics.median(random) / statistics.median(conv),
        "search_gflop": {name: f / 1e9 for name, f in flops.items()},
        "random_gflop_per_s": gflops("random", statistics.median(random)),
        "same_structure_gflop_per_s": gflops("same", statistics.median(same)),
        "same_structure_conv_gflop_per_s": gflops("conv", statistics.median(conv)),
        "load_average_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
