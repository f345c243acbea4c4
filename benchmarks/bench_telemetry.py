"""Overhead of the ``gradient_health`` observer per profile, wired as a run uses it.

The default task (``shapes``: 3,500 training and 2,000 validation images, 32×32, batch 32, the
default CNN host with its two slots) is trained with the engine's own pieces — the
:class:`MorphogeneticModel`, :class:`SeedTrainer` with its safety governor, ``evaluate`` — and
the observer built by its registered factory exactly as ``run_episode`` builds it: hooked on
the model's parameters, measuring after every backward, reporting in ``after_epoch``. Variants:
no observer, ``minimal``, ``standard``, ``diagnostic``; each trains its own model from the same
initial weights on the same batches.

Noise control: everything runs in this one thread. An epoch's training steps are cut into
chunks of ``--chunk`` steps; for every chunk the variants take turns, in an order that reverses
from one chunk to the next, so load drift hits every variant alike. (An earlier version ran
each variant in its own thread and charged thread hand-over and cache effects to the hooked
variants: it reported ``minimal`` above ``standard``.) The observer only acts in backward and
``after_epoch``, so validation — the same for every variant — is timed once, for the
denominator.

Figures: ``overhead.<profile>.median`` is the observer's extra time as a fraction of a whole
epoch, ``(chunks · median Δ + T_after_epoch) / (T_train(none) + T_val)``, where ``median Δ`` is
the median over every (repeat, chunk) pair of ``t(profile) − t(none)`` for that chunk — a load
burst that hits one variant's turn in a minority of chunks drops out; ``min``/``max`` give the
per-repeat spread of the same figure computed from plain sums. ``overhead_train`` is the same
over training time only.

    python benchmarks/bench_telemetry.py [--repeats 5] [--chunk 10] [--threads 0] [--device cpu]

``--threads 0`` = what a run picks (1 on CPU for this host). Prints one JSON object. Goals:
minimal ≤ 2 %, standard ≤ 10 %.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Any

import structlog
import torch

from esper_core.config import RunConfig
from esper_core.contracts.reports import EpochReport
from esper_core.kasmina import SafetyGovernor, SeedTrainer, evaluate
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.setup.seeding import choose_threads
from esper_core.setup.tasks import build_model, build_task

VARIANTS = ("none", "minimal", "standard", "diagnostic")


class Lane:
    """One variant: its own model, trainer (with governor) and, unless ``none``, observer."""

    def __init__(self, variant: str, *, resolved: Any, task: Any, catalog: Any, seed: int) -> None:
        torch.manual_seed(seed)
        self.model = build_model(resolved, task, lambda event: None)
        self.trainer = SeedTrainer(
            self.model, host_lr=resolved.training.lr, seed_lr=resolved.training.seed_lr,
            weight_decay=resolved.training.weight_decay, optimizer=resolved.training.optimizer,
            governor=SafetyGovernor(self.model))
        self.observer = None if variant == "none" else catalog.observers.get(
            "gradient_health").factory(model=self.model, options={"profile": variant})
        self.task = task

    def train(self, batches: list[Any], epoch: int, device: str) -> float:
        start = time.perf_counter()
        self.trainer.train_epoch(batches, self.task.loss, epoch=epoch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def after_epoch(self, report: EpochReport) -> float:
        if self.observer is None:
            return 0.0
        start = time.perf_counter()
        self.observer.after_epoch(report=report)
        return time.perf_counter() - start

    def close(self) -> None:
        if self.observer is not None:
            self.observer.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=10, help="training steps per timed chunk")
    parser.add_argument("--threads", type=int, default=0, help="0: what a run would pick")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    # An entry point: logs go to stderr, stdout carries only the JSON figures.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    catalog = build_catalog(load_plugins(PluginSettings(autoload=True)))
    resolved = resolve_run(RunConfig.from_dict({"run": {"task": "shapes", "policy": "noop"}}), catalog)
    task = build_task(resolved, seed=0, device=args.device)
    probe = task.build_host()
    threads = choose_threads(args.threads, args.device, sum(p.numel() for p in probe.parameters()))
    if threads is not None:
        torch.set_num_threads(threads)
    batches = list(task.train_batches(epoch=1))
    val_batches = list(task.val_batches())
    chunks = [batches[i:i + args.chunk] for i in range(0, len(batches), args.chunk)]

    # Warm-up: allocator, kernels, lazy imports.
    warm = {v: Lane(v, resolved=resolved, task=task, catalog=catalog, seed=0) for v in VARIANTS}
    for lane in warm.values():
        lane.train(chunks[0], 1, args.device)
        lane.close()

    overhead: dict[str, list[float]] = {v: [] for v in VARIANTS[1:]}
    overhead_train: dict[str, list[float]] = {v: [] for v in VARIANTS[1:]}
    chunk_deltas: dict[str, list[float]] = {v: [] for v in VARIANTS[1:]}
    after_epoch: dict[str, list[float]] = {v: [] for v in VARIANTS[1:]}
    train_seconds: list[float] = []
    epoch_seconds: list[float] = []
    for repeat in range(args.repeats):
        lanes = {v: Lane(v, resolved=resolved, task=task, catalog=catalog, seed=repeat + 1)
                 for v in VARIANTS}
        train = dict.fromkeys(VARIANTS, 0.0)
        for index, chunk in enumerate(chunks):
            order = VARIANTS if (index + repeat) % 2 == 0 else VARIANTS[::-1]
            seconds = {variant: lanes[variant].train(chunk, 1, args.device) for variant in order}
            for variant in VARIANTS:
                train[variant] += seconds[variant]
            for variant in VARIANTS[1:]:
                chunk_deltas[variant].append(seconds[variant] - seconds["none"])
        start = time.perf_counter()
        val = evaluate(lanes["none"].model, val_batches, task.loss, task.correct, epoch=1)
        val_seconds = time.perf_counter() - start
        report = EpochReport(episode=0, epoch=1, max_epochs=resolved.epochs, train_loss=0.0,
                             val_loss=val.loss, val_accuracy=val.accuracy, host_params=0,
                             seed_params=0, slots=lanes["none"].model.slot_reports())
        epoch = train["none"] + val_seconds
        epoch_seconds.append(epoch)
        train_seconds.append(train["none"])
        for variant in VARIANTS[1:]:
            after_epoch[variant].append(lanes[variant].after_epoch(report))
            extra = train[variant] - train["none"] + after_epoch[variant][-1]
            overhead[variant].append(extra / epoch)
            overhead_train[variant].append(extra / train["none"])
        for lane in lanes.values():
            lane.close()

    result: dict[str, Any] = {
        "benchmark": "gradient_health_observer_overhead",
        "task": "shapes (default task: default CNN host, 2 slots dormant)",
        "batch_size": resolved.training.batch_size,
        "steps_per_epoch": len(batches),
        "val_batches": len(val_batches),
        "chunk_steps": args.chunk,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "device": args.device,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "epoch_seconds_none_median": round(statistics.median(epoch_seconds), 4),
        "overhead": {}, "overhead_train": {},
    }
    epoch_s, train_s = statistics.median(epoch_seconds), statistics.median(train_seconds)
    for v in VARIANTS[1:]:
        extra = len(chunks) * statistics.median(chunk_deltas[v]) + statistics.median(after_epoch[v])
        low, high = min(overhead[v]), max(overhead[v])
        result["overhead"][v] = {"median": round(extra / epoch_s, 5), "min": round(low, 5),
                                 "max": round(high, 5)}
        result["overhead_train"][v] = {"median": round(extra / train_s, 5),
                                       "min": round(min(overhead_train[v]), 5),
                                       "max": round(max(overhead_train[v]), 5)}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
