"""Overhead of the ``gradient_health`` observer per profile, wired as a run uses it.

The default task (``shapes``: 3,500 training and 2,000 validation images, 32×32, batch 32, the
default CNN host with its two slots) is trained with the engine's own pieces — the
:class:`MorphogeneticModel`, :class:`SeedTrainer` with its safety governor, ``evaluate`` — and
the observer built by its registered factory exactly as ``run_episode`` builds it: hooked on
the model's parameters, measuring after every backward, reporting in ``after_epoch``. Variants:
no observer, ``minimal``, ``standard``, ``diagnostic``; every variant trains its own model from
the same initial weights on the same batches.

Noise control: each variant runs in its own thread, but only one runs at a time. An epoch is
cut into segments — the epoch's set-up, every training step, the wrap-up, and the same for
validation (each batch, then the wrap-up with ``after_epoch``) — and for every segment the
variants take turns in a freshly shuffled order, so a noisy neighbour slows all variants
alike instead of biasing one.

Figures: ``overhead.<profile>.median`` is ``T(profile) / T(no observer) − 1``, where ``T`` sums
over the epoch's segments the median over repeats of that segment's time (a burst of load that
hits a segment in a minority of the repeats drops out); ``whole_epoch_median/min/max`` are the
plain paired ratios of whole-epoch times over the repeats, for comparison. ``overhead`` is the
whole epoch as a run has it; ``overhead_train`` its training part only (set-up, steps, wrap-up
and ``after_epoch``; validation excluded, so the denominator is smaller). ``overhead_direct``
is the time spent inside the observer (its end-of-backward measurement, forward pre-hook and
``after_epoch``) over the no-observer epoch; ``hook_dispatch_us_per_step`` estimates the one
cost that leaves out: autograd calling the per-parameter post-accumulate hooks.

    python benchmarks/bench_telemetry.py [--repeats 7] [--batches 0] [--threads 0] [--device cpu]

``--batches 0`` = the whole epoch; ``--threads 0`` = what a run picks (1 on CPU for this host).
Prints one JSON object. Goals: minimal ≤ 2 %, standard ≤ 10 %.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import random
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import structlog
import torch

from esper_core.config import RunConfig
from esper_core.contracts.reports import EpochReport
from esper_core.kasmina import SafetyGovernor, SeedTrainer, evaluate
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.tolaria.episode import build_model
from esper_core.tolaria.resolve import resolve_run
from esper_core.tolaria.seeding import choose_threads
from esper_core.tolaria.vector import build_task
from esper_telemetry.gradient_health import GradientHealthTracker
from esper_telemetry.observer import GradientHealthObserver

VARIANTS = ("none", "minimal", "standard", "diagnostic")

#: Seconds spent inside the observer's code, per profile (filled by the timing wrappers).
INSIDE: dict[str, float] = defaultdict(float)


def _timed(method: Callable[..., Any], profile_of: Callable[[Any], str]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            INSIDE[profile_of(self)] += time.perf_counter() - start

    return wrapper


def instrument() -> None:
    """Time the observer's once-per-step/forward/epoch entry points (not the per-parameter
    hooks: a timer there would cost more than the hook)."""
    GradientHealthTracker._after_backward = _timed(  # type: ignore[method-assign]
        GradientHealthTracker._after_backward, lambda t: t.config.profile)
    GradientHealthObserver._before_forward = _timed(  # type: ignore[method-assign]
        GradientHealthObserver._before_forward, lambda o: o.config.profile)
    GradientHealthObserver.after_epoch = _timed(  # type: ignore[method-assign]
        GradientHealthObserver.after_epoch, lambda o: o.config.profile)


class Lane(threading.Thread):
    """One variant's episode pieces; trains segment by segment when the conductor says so."""

    def __init__(self, variant: str, *, resolved: Any, task: Any, catalog: Any, seed: int,
                 batches: list[Any], val_batches: list[Any], device: str) -> None:
        super().__init__(name=f"lane-{variant}", daemon=True)
        self.variant = variant
        self.task = task
        self.batches = batches
        self.val_batches = val_batches
        self.cuda = device.startswith("cuda")
        torch.manual_seed(seed)
        self.model = build_model(resolved, task, lambda event: None)
        self.trainer = SeedTrainer(
            self.model, host_lr=resolved.training.lr, seed_lr=resolved.training.seed_lr,
            weight_decay=resolved.training.weight_decay, optimizer=resolved.training.optimizer,
            governor=SafetyGovernor(self.model))
        self.observer = None if variant == "none" else catalog.observers.get(
            "gradient_health").factory(model=self.model, options={"profile": variant})
        self.turn = threading.Semaphore(0)
        self.done = threading.Semaphore(0)
        self.train_seconds = 0.0
        self.val_seconds = 0.0
        self.after_epoch_seconds = 0.0
        self.error: BaseException | None = None
        #: (part, seconds) of every segment, in order.
        self.segments: list[tuple[str, float]] = []
        self._clock = 0.0

    # Clock of the current segment (synchronised on CUDA so kernels are charged to it).
    def _start(self) -> None:
        self.turn.acquire()
        if self.cuda:
            torch.cuda.synchronize()
        self._clock = time.perf_counter()

    def _stop(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - self._clock
        return seconds

    def _end_segment(self, part: str) -> None:
        seconds = self._stop()
        setattr(self, part, getattr(self, part) + seconds)
        self.segments.append((part, seconds))
        self.done.release()

    def _feed(self, batches: list[Any], part: str) -> Iterator[Any]:
        """``batches``, one segment per batch; the code before the first batch and after the
        last one are segments of their own."""
        for batch in batches:
            self._end_segment(part)  # the set-up, or the previous batch
            self._start()
            yield batch
        self._end_segment(part)  # the last batch
        self._start()  # the wrap-up follows in the consumer

    def run(self) -> None:
        """One epoch, as ``run_episode`` runs it: train, validate, ``after_epoch``."""
        try:
            self._start()
            stats = self.trainer.train_epoch(self._feed(self.batches, "train_seconds"),
                                             self.task.loss, epoch=1)
            self._end_segment("train_seconds")
            self._start()
            val = evaluate(self.model, self._feed(self.val_batches, "val_seconds"),
                           self.task.loss, self.task.correct, epoch=1)
            if self.observer is not None:
                report = EpochReport(
                    episode=0, epoch=1, max_epochs=1, train_loss=stats.loss, val_loss=val.loss,
                    val_accuracy=val.accuracy, host_params=0, seed_params=0,
                    slots=self.model.slot_reports())
                started = time.perf_counter()
                self.observer.after_epoch(report=report)
                self.after_epoch_seconds += time.perf_counter() - started
            self._end_segment("val_seconds")
        except BaseException as exc:  # surfaced by the conductor
            self.error = exc
            self.done.release()
        finally:
            if self.observer is not None:
                self.observer.close()


def run_epoch(lanes: dict[str, Lane], segments: int, shuffler: random.Random) -> None:
    """Give every lane each of the epoch's segments in turn, in a shuffled order per segment."""
    for _ in range(segments):
        order = list(lanes)
        shuffler.shuffle(order)
        for name in order:
            lane = lanes[name]
            lane.turn.release()
            lane.done.acquire()
            if lane.error is not None:
                raise RuntimeError(f"lane {name} failed") from lane.error


def hook_dispatch_cost(n_params: int, pairs: int = 30, backwards: int = 200) -> float:
    """µs per backward that autograd spends calling ``n_params`` post-accumulate hooks doing
    what the tracker's do before the end-of-backward callback (append, check a flag): blocks of
    backwards with and without the hooks alternate; the median paired difference."""
    params = [torch.nn.Parameter(torch.randn(64)) for _ in range(n_params)]
    arrived: list[int] = []
    state = {"queued": False}

    def on_grad(index: int, param: Any) -> None:
        arrived.append(index)
        if not state["queued"]:
            state["queued"] = True

    def block(hooked: bool) -> float:
        handles = [p.register_post_accumulate_grad_hook(functools.partial(on_grad, i))
                   for i, p in enumerate(params)] if hooked else []
        start = time.perf_counter()
        for _ in range(backwards):
            for p in params:
                p.grad = None
            torch.stack([p.sum() for p in params]).sum().backward()
            arrived.clear()
            state["queued"] = False
        seconds = time.perf_counter() - start
        for handle in handles:
            handle.remove()
        return seconds / backwards * 1e6

    block(True), block(False)  # warm-up
    differences = []
    for i in range(pairs):
        if i % 2:
            with_hooks, without = block(True), block(False)
        else:
            without, with_hooks = block(False), block(True)
        differences.append(with_hooks - without)
    return max(0.0, statistics.median(differences))


def robust_seconds(runs: list[list[tuple[str, float]]], parts: tuple[str, ...]) -> float:
    """Sum over segments of the median over repeats of that segment's time: a noise burst
    that hits a segment in a minority of repeats drops out."""
    total = 0.0
    for index, (part, _) in enumerate(runs[0]):
        if part in parts:
            total += statistics.median(run[index][1] for run in runs)
    return total


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 5), "min": round(min(values), 5),
            "max": round(max(values), 5)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batches", type=int, default=0, help="training steps per epoch (0: all)")
    parser.add_argument("--threads", type=int, default=0, help="0: what a run would pick")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    # An entry point: logs go to stderr, stdout carries only the JSON figures.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    catalog = build_catalog(load_plugins(PluginSettings(autoload=True)))
    resolved = resolve_run(RunConfig.from_dict({"run": {"task": "shapes", "policy": "noop"}}),
                           catalog)
    task = build_task(resolved, seed=0, device=args.device)
    probe = task.build_host()
    host_params = sum(p.numel() for p in probe.parameters())
    threads = choose_threads(args.threads, args.device, host_params)
    if threads is not None:
        torch.set_num_threads(threads)
    batches = list(task.train_batches(epoch=1))
    if args.batches:
        batches = batches[:args.batches]
    val_batches = list(task.val_batches())
    instrument()
    shuffler = random.Random(0)
    # Training: set-up, steps, wrap-up; validation: set-up, batches, wrap-up + after_epoch.
    segments_per_epoch = len(batches) + 2 + len(val_batches) + 2

    def fresh(seed: int) -> dict[str, Lane]:
        lanes = {v: Lane(v, resolved=resolved, task=task, catalog=catalog, seed=seed,
                         batches=batches, val_batches=val_batches, device=args.device)
                 for v in VARIANTS}
        for lane in lanes.values():
            lane.start()
        return lanes

    # Warm-up epoch: allocator, kernels, lazy imports.
    warm = fresh(0)
    run_epoch(warm, segments_per_epoch, shuffler)
    for lane in warm.values():
        lane.join()
    epoch_times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    train_times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    inside: dict[str, list[float]] = {v: [] for v in VARIANTS}
    segments: dict[str, list[list[tuple[str, float]]]] = {v: [] for v in VARIANTS}
    n_params = 0
    for repeat in range(args.repeats):
        lanes = fresh(repeat + 1)
        n_params = sum(1 for p in lanes["none"].model.parameters() if p.requires_grad)
        INSIDE.clear()
        run_epoch(lanes, segments_per_epoch, shuffler)
        for lane in lanes.values():
            lane.join()
        for variant, lane in lanes.items():
            epoch_times[variant].append(lane.train_seconds + lane.val_seconds)
            train_times[variant].append(lane.train_seconds + lane.after_epoch_seconds)
            inside[variant].append(INSIDE.get(variant, 0.0))
            segments[variant].append(
                [*lane.segments, ("after_epoch", lane.after_epoch_seconds)])
    dispatch_us = hook_dispatch_cost(n_params)
    robust_epoch = {v: robust_seconds(segments[v], ("train_seconds", "val_seconds"))
                    for v in VARIANTS}
    robust_train = {v: robust_seconds(segments[v], ("train_seconds", "after_epoch"))
                    for v in VARIANTS}
    step_ms = statistics.median(train_times["none"]) / len(batches) * 1e3
    result: dict[str, Any] = {
        "benchmark": "gradient_health_observer_overhead",
        "task": "shapes (default task: default CNN host, 2 slots dormant)",
        "batch_size": resolved.training.batch_size,
        "steps_per_epoch": len(batches),
        "val_batches": len(val_batches),
        "trainable_parameters": n_params,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "device": args.device,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "epoch_seconds_median": {v: round(statistics.median(t), 4) for v, t in epoch_times.items()},
        "train_step_ms_median_none": round(step_ms, 3),
        "overhead": {},
        "overhead_train": {},
        "overhead_direct": {},
        "hook_dispatch_us_per_step": round(dispatch_us, 2),
        "hook_dispatch_fraction_of_step": round(dispatch_us / (step_ms * 1e3), 5),
    }

    def ratios(times: dict[str, list[float]], variant: str) -> list[float]:
        return [t / b - 1.0 for t, b in zip(times[variant], times["none"], strict=True)]

    for variant in VARIANTS[1:]:
        whole = ratios(epoch_times, variant)
        result["overhead"][variant] = {
            "median": round(robust_epoch[variant] / robust_epoch["none"] - 1.0, 5),
            **{f"whole_epoch_{k}": v for k, v in _spread(whole).items()},
        }
        whole = ratios(train_times, variant)
        result["overhead_train"][variant] = {
            "median": round(robust_train[variant] / robust_train["none"] - 1.0, 5),
            **{f"whole_epoch_{k}": v for k, v in _spread(whole).items()},
        }
        result["overhead_direct"][variant] = _spread(
            [t / b for t, b in zip(inside[variant], epoch_times["none"], strict=True)])
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
