"""Threads × memory format for the default CNN host's training step (why small hosts get one
thread: see ``esper_core.setup.seeding.choose_threads``).

Times one AdamW training step of the default 8/16/32 host at batch 128 for 1 and 2 intra-op
threads, contiguous and channels-last, interleaved and repeated. Prints one JSON object.

    python benchmarks/bench_threads.py [--repeats 7] [--steps 10]

It measures twice: on the machine as it is ("idle"), and with one other process spinning on a
core ("busy": a laptop doing something else, or two runs side by side).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from esper_blueprints_cnn.host import CNNHost, HostConfig


def step_time(threads: int, channels_last: bool, steps: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    host = CNNHost(HostConfig())
    x = torch.randn(128, 3, 32, 32)
    y = torch.randint(0, 10, (128,))
    if channels_last:
        host = host.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(host.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(host(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    result: dict[str, object] = {"repeats": args.repeats, "steps": args.steps, "torch": torch.__version__}
    result["idle"] = measure(args)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        result["busy"] = measure(args)
    finally:
        spinner.kill()
    print(json.dumps(result, indent=2))


def measure(args: argparse.Namespace) -> dict[str, object]:
    variants = [(t, cl) for t in (1, 2) for cl in (False, True)]
    times: dict[tuple[int, bool], list[float]] = {v: [] for v in variants}
    for r in range(args.repeats):
        for v in variants if r % 2 == 0 else reversed(variants):
            times[v].append(step_time(*v, steps=args.steps))
    median = {f"{t}_threads_{'channels_last' if cl else 'contiguous'}_ms": round(1000 * statistics.median(ts), 2)
              for (t, cl), ts in times.items()}
    best_one = min(statistics.median(times[(1, False)]), statistics.median(times[(1, True)]))
    best_two = min(statistics.median(times[(2, False)]), statistics.median(times[(2, True)]))
    return {"step_ms_median": median, "best_2_threads_over_best_1_thread": round(best_two / best_one, 3)}


if __name__ == "__main__":
    main()
