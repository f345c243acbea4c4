"""Crucible throughput: batched same-structure training vs a per-model Python loop.

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
from esper_core.discovery.curriculum import TASKS

CANDIDATES = 256
LOOP_MODELS = 16
STEPS = 100
REPEATS = int(os.environ.get("BENCH_CRUCIBLE_REPEATS", "7"))
TOKENS = ("RELU",)


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
    result = {
        "workload": f"xor, 2→16→ReLU→16→2, {STEPS} Adam steps, {CANDIDATES} candidates, 1 thread",
        "repeats": REPEATS,
        "batched_candidates_per_s": _summary(batched),
        "loop_candidates_per_s": _summary(loop),
        "ratio_batched_over_loop": _summary(ratios),
        "crucible_evaluate_candidates_per_s": _summary(crucible),
        "load_average_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
