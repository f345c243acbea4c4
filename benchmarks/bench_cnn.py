"""CNN topology benchmark: data-pipeline overhead, host-segment overhead, memory format.

Run ``python benchmarks/bench_cnn.py``; ``main()`` prints one JSON dict. All timings use two
threads, interleave the variants being compared, repeat them, and report the median with the
min–max spread, so a noisy neighbour hits both sides alike.

* ``pipeline``: one epoch (train + validation) of the default ``shapes`` task fed by
  ``ImageTask`` (gather-based crop/flip, normalisation, per-epoch shuffling) vs the same
  epoch over batches materialised beforehand. Goal: ratio ≤ 1.10.
* ``host``: training steps of ``CNNHost`` (forward through its segments) vs a plain
  ``nn.Sequential`` of the same layers with the same weights. Goal: ratio ≤ 1.05.
* ``memory_format``: training-step time of the default host and two wider ones, contiguous vs
  channels-last (the full comparison, which decides ``prefers_channels_last``, is
  ``benchmarks/memory_format.py``).
"""

from __future__ import annotations

import copy
import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn

from esper_blueprints_cnn.host import CNNHost, HostConfig
from esper_blueprints_cnn.tasks.procedural import make_shapes_task

THREADS = 2


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(samples), 4),
        "min": round(min(samples), 4),
        "max": round(max(samples), 4),
    }


def interleaved(variants: dict[str, Callable[[], None]], *, repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def run_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    train: Iterable[tuple[torch.Tensor, torch.Tensor]],
    val: Iterable[tuple[torch.Tensor, torch.Tensor]],
) -> None:
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for x, y in train:
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        for x, _ in val:
            model(x)


def bench_pipeline(repeats: int) -> dict[str, object]:
    start = time.perf_counter()
    task = make_shapes_task(seed=0, device="cpu", options={})
    generation = time.perf_counter() - start
    host = task.build_host()
    opt = torch.optim.AdamW(host.parameters(), lr=3e-3)
    premade_train = list(task.train_batches(epoch=0))
    premade_val = list(task.val_batches())
    epoch = iter(range(1, 10_000))
    run_epoch(host, opt, premade_train[:4], premade_val[:2])  # warm-up
    times = interleaved(
        {
            "pipeline": lambda: run_epoch(host, opt, task.train_batches(epoch=next(epoch)), task.val_batches()),
            "premade": lambda: run_epoch(host, opt, premade_train, premade_val),
        },
        repeats=repeats,
    )
    return {
        "train_size": task.train_size,
        "val_size": task.val_size,
        "batch_size": task.batch_size,
        "generation_s": round(generation, 3),
        "epoch_s": {k: summary(v) for k, v in times.items()},
        "ratio": round(statistics.median(times["pipeline"]) / statistics.median(times["premade"]), 3),
    }


def train_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def run() -> None:
        for _ in range(steps):
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def plain_sequential(config: HostConfig) -> nn.Sequential:
    """The host's layers written out as one ordinary ``nn.Sequential``."""
    layers: list[nn.Module] = []
    chans = (config.in_channels, *config.widths)
    for c_in, c_out in itertools.pairwise(chans):
        layers += [nn.Conv2d(c_in, c_out, config.kernel_size, padding=config.kernel_size // 2, bias=False),
                   nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(chans[-1], config.num_classes)]
    return nn.Sequential(*layers)


def bench_host(repeats: int, steps: int) -> dict[str, object]:
    torch.manual_seed(0)
    host = CNNHost()
    plain = plain_sequential(host.config)
    plain.load_state_dict(host.sequential().state_dict())
    x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
    variants = {"segments": train_steps(host, x, y, steps), "sequential": train_steps(plain, x, y, steps)}
    for fn in variants.values():
        fn()  # warm-up
    times = interleaved(variants, repeats=repeats)
    return {
        "steps": steps,
        "batch_size": 128,
        "seconds": {k: summary(v) for k, v in times.items()},
        "ratio": round(statistics.median(times["segments"]) / statistics.median(times["sequential"]), 3),
    }


def memory_format_speedup(widths: tuple[int, ...], batch: int, side: int, *, repeats: int,
                          steps: int) -> dict[str, object]:
    """Training-step time of one host in each format (its input in the same format, as the
    task hands it), and channels-last's speedup: time(contiguous) / time(channels-last)."""
    torch.manual_seed(0)
    base = CNNHost(HostConfig(widths=widths))
    x, y = torch.randn(batch, 3, side, side), torch.randint(0, 10, (batch,))
    cl = copy.deepcopy(base).to(memory_format=torch.channels_last)
    times, speedup = compare_formats({
        "contiguous": train_steps(base, x, y, steps),
        "channels_last": train_steps(cl, x.contiguous(memory_format=torch.channels_last), y, steps),
    }, repeats=repeats)
    return {"step_ms": {k: summary([1e3 * t / steps for t in v]) for k, v in times.items()},
            "channels_last_speedup": speedup}


def compare_formats(variants: dict[str, Callable[[], None]], *,
                    repeats: int) -> tuple[dict[str, list[float]], float]:
    """Warm up, then time ``contiguous`` and ``channels_last`` interleaved; the times and
    channels-last's speedup, time(contiguous) / time(channels-last)."""
    for fn in variants.values():
        fn()
    times = interleaved(variants, repeats=repeats)
    return times, round(statistics.median(times["contiguous"]) / statistics.median(times["channels_last"]), 3)


def bench_memory_format(repeats: int, steps: int) -> dict[str, object]:
    """The default host at its batch, and two wider ones at batch 128 (the full comparison,
    which decides ``prefers_channels_last``: benchmarks/memory_format.py)."""
    hosts = (((4, 8, 16), 32), ((8, 16, 32), 128), ((32, 64, 128), 128))
    return {",".join(map(str, widths)): memory_format_speedup(widths, batch, 32, repeats=repeats, steps=steps)
            for widths, batch in hosts}


def main(repeats: int = 7) -> dict[str, object]:
    torch.set_num_threads(THREADS)
    result = {
        "torch": torch.__version__,
        "threads": THREADS,
        "repeats": repeats,
        "pipeline": bench_pipeline(repeats),
        "host": bench_host(repeats, steps=20),
        "memory_format": bench_memory_format(repeats, steps=5),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
