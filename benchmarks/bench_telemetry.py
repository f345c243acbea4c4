"""Overhead of the gradient-health tracker per profile, against the same loop without it.

A 3-block CNN (8/16/32 channels) trains on random 32×32 images, batch 128, two CPU threads.
Each repeat trains one fresh model per variant for an epoch, interleaving the variants step
by step in a shuffled order (so drift in machine speed hits all variants alike); an epoch's
time is the sum of its step times plus the tracker's end-of-epoch summary. Overhead is the
median over repeats of the paired ratio ``t(variant) / t(no tracker) − 1``, with its spread
(min and max over repeats). On a busy machine the end-to-end difference drowns in noise,
so the time spent inside the tracker is also reported as a fraction of the no-tracker epoch
(``overhead_direct``).

    python benchmarks/bench_telemetry.py [--repeats 7] [--batches 20]

Prints one JSON object. Goals: minimal ≤ 2 %, standard ≤ 10 %.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from typing import Any

import torch
from torch import nn

from esper_telemetry.gradient_health import GradientHealthConfig, GradientHealthTracker

VARIANTS = ("none", "minimal", "standard", "diagnostic")


def make_cnn() -> nn.Module:
    def block(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out),
                             nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(block(3, 8), block(8, 16), block(16, 32), nn.Flatten(),
                         nn.Linear(32 * 4 * 4, 10))


class Trainer:
    """One model + optimizer (+ tracker) trained step by step, so variants can interleave."""

    def __init__(self, variant: str, seed: int) -> None:
        torch.manual_seed(seed)
        self.model = make_cnn()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.loss_fn = nn.CrossEntropyLoss()
        self.tracker = (None if variant == "none" else GradientHealthTracker(
            self.model, GradientHealthConfig.from_profile(variant)))
        self.tracker_seconds = 0.0

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        self.loss_fn(self.model(inputs), targets).backward()
        if self.tracker is not None:
            tracked = time.perf_counter()
            self.tracker.step()
            self.tracker_seconds += time.perf_counter() - tracked
        self.optimizer.step()
        return time.perf_counter() - start

    def end_epoch(self) -> float:
        """Seconds of the per-epoch summary (the tracker's one device sync)."""
        if self.tracker is None:
            return 0.0
        start = time.perf_counter()
        self.tracker.epoch_summary()
        seconds = time.perf_counter() - start
        self.tracker_seconds += seconds
        return seconds


def run_epoch(batches: list[tuple[torch.Tensor, torch.Tensor]], seed: int,
              shuffler: random.Random) -> tuple[dict[str, float], dict[str, float]]:
    """One epoch per variant, steps interleaved batch by batch in a shuffled order.

    Interleaving at the step level means every variant sees the same moments of machine
    load, so a noisy neighbour slows all of them alike instead of biasing one.
    """
    trainers = {v: Trainer(v, seed) for v in VARIANTS}
    totals = dict.fromkeys(VARIANTS, 0.0)
    for inputs, targets in batches:
        order = list(VARIANTS)
        shuffler.shuffle(order)
        for variant in order:
            totals[variant] += trainers[variant].step(inputs, targets)
    for variant, trainer in trainers.items():
        totals[variant] += trainer.end_epoch()
        if trainer.tracker is not None:
            trainer.tracker.close()
    return totals, {v: t.tracker_seconds for v, t in trainers.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(128, 3, 32, 32, generator=generator),
                torch.randint(0, 10, (128,), generator=generator)) for _ in range(args.batches)]
    shuffler = random.Random(0)
    run_epoch(batches[:3], seed=0, shuffler=shuffler)  # warm-up: allocator, kernels, imports
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    inside: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for repeat in range(args.repeats):
        totals, tracker_seconds = run_epoch(batches, seed=repeat, shuffler=shuffler)
        for variant in VARIANTS:
            times[variant].append(totals[variant])
            inside[variant].append(tracker_seconds[variant])
    result: dict[str, Any] = {
        "benchmark": "gradient_health_overhead",
        "model": "cnn 3 blocks 8/16/32, 32x32 random data",
        "batch_size": 128,
        "batches_per_epoch": args.batches,
        "repeats": args.repeats,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "epoch_seconds_median": {v: statistics.median(t) for v, t in times.items()},
        "overhead": {},
        # Time spent inside the tracker (step + epoch summary) / epoch time without it:
        # immune to machine noise that swamps the end-to-end difference on a shared host.
        "overhead_direct": {},
    }
    for variant in VARIANTS[1:]:
        ratios = [t / base - 1.0 for t, base in zip(times[variant], times["none"])]
        direct = [t / base for t, base in zip(inside[variant], times["none"])]
        result["overhead"][variant] = {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        }
        result["overhead_direct"][variant] = {
            "median": statistics.median(direct),
            "min": min(direct),
            "max": max(direct),
        }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
