"""Which memory format a CNN host trains in fastest on this CPU: contiguous (NCHW) or
channels-last (NHWC). Decides ``esper_blueprints_cnn.tasks.base.prefers_channels_last``.

    .venv/bin/python benchmarks/memory_format.py --out docs/memory_format.md

Three measurements, in one process, each format interleaved with the other and repeated
(median, with min–max), with two threads:

* **BatchNorm** — ``BatchNorm2d`` alone on each activation of the default host, forward and
  forward plus backward, in each format;
* **training step** — forward, backward and an SGD step of ``CNNHost``, its input in the same
  format (the task hands it that way), for each shipped task's default host, batch and image
  size (``shapes``, ``micro``, the CIFAR tasks' 32/64/128 host) and for hosts between them;
* **environment step** — one epoch plus its decision of an episode of ``shapes`` and of
  ``micro`` in an in-process environment, as a learned controller steps them, with the task's
  format forced each way: the figure batched environments are judged on (docs/batched_environments.md).

The speedup is ``time(contiguous) / time(channels-last)``: above 1, channels-last is faster.
Prints one JSON object; with ``--out`` writes the markdown that quotes it (and the JSON beside it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from bench_cnn import compare_formats, memory_format_speedup, summary

from esper_blueprints_cnn.tasks import base as image_task

THREADS = 2

#: (label, widths, batch size, image side): each shipped task's default host first.
HOSTS: tuple[tuple[str, tuple[int, ...], int, int], ...] = (
    ("shapes (default task)", (4, 8, 16), 32, 32),
    ("micro", (8, 16, 32), 64, 16),
    ("cifar10 / cifar100", (32, 64, 128), 128, 32),
    ("4,8,16 at batch 128", (4, 8, 16), 128, 32),
    ("8,16,32 at 32 px", (8, 16, 32), 32, 32),
    ("8,16,32 at batch 128", (8, 16, 32), 128, 32),
    ("16,32,64 at 32 px", (16, 32, 64), 32, 32),
    ("16,32,64 at batch 128", (16, 32, 64), 128, 32),
)


def batch_norm_speedup(shape: tuple[int, int, int, int], *, repeats: int, steps: int) -> dict[str, Any]:
    """BatchNorm2d alone on one activation shape in each format: forward, and forward plus
    backward (the layer the default host's profile shows to cost most in channels-last)."""
    torch.manual_seed(0)
    norm = torch.nn.BatchNorm2d(shape[1])
    x = torch.randn(*shape)
    inputs = {"contiguous": x, "channels_last": x.contiguous(memory_format=torch.channels_last)}
    grad = torch.randn(*shape)

    def forward(x: torch.Tensor) -> Callable[[], None]:
        def run() -> None:
            for _ in range(steps):
                norm(x)
        return run

    def both(x: torch.Tensor) -> Callable[[], None]:
        leaf = x.clone().requires_grad_()

        def run() -> None:
            for _ in range(steps):
                norm(leaf).backward(grad)
        return run

    out: dict[str, Any] = {}
    for name, make in (("forward", forward), ("forward_backward", both)):
        times, speedup = compare_formats({fmt: make(t) for fmt, t in inputs.items()}, repeats=repeats)
        out[name] = {"us": {k: round(1e6 * statistics.median(v) / steps, 1) for k, v in times.items()},
                     "channels_last_speedup": speedup}
    return out


@contextlib.contextmanager
def forced_format(channels_last: bool) -> Iterator[None]:
    """Tasks built inside the block run their hosts in the given format."""
    chosen = image_task.prefers_channels_last
    image_task.prefers_channels_last = lambda device, widths: channels_last
    try:
        yield
    finally:
        image_task.prefers_channels_last = chosen


def env_step_speedup(task: str, *, repeats: int) -> dict[str, Any]:
    """Environment steps (one epoch and its decision) of one episode in each format."""
    from growth_lib import resolve

    from esper_core.contracts.decisions import Decision, Op
    from esper_core.tolaria.environments import InProcessEnvironments

    resolved = resolve(task=task, policy="noop", seed=0)
    envs = {}
    for name, channels_last in (("contiguous", False), ("channels_last", True)):
        with forced_format(channels_last):
            env = InProcessEnvironments(resolved, n_envs=1, device="cpu", emit=lambda event: None,
                                        policy_name="noop")
            env.start([0], [0])
        assert env._envs[0] is not None and env._envs[0].task.channels_last is channels_last  # type: ignore[attr-defined]
        envs[name] = env
    try:
        def stepper(env: InProcessEnvironments) -> Callable[[], None]:
            def step() -> None:
                env.step([Decision(op=Op.WAIT)])
            return step

        times, speedup = compare_formats({name: stepper(env) for name, env in envs.items()}, repeats=repeats)
    finally:
        for env in envs.values():
            env.close()
    return {
        "seconds_per_step": {k: summary(v) for k, v in times.items()},
        "steps_per_second": {k: round(1 / statistics.median(v), 3) for k, v in times.items()},
        "channels_last_speedup": speedup,
    }


def measure(repeats: int, steps: int, env_repeats: int) -> dict[str, Any]:
    torch.set_num_threads(THREADS)
    return {
        "torch": torch.__version__,
        "threads": THREADS,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "repeats": repeats,
        "training_step": {label: {"widths": list(widths), "batch_size": batch, "image_size": side,
                                  **memory_format_speedup(widths, batch, side, repeats=repeats, steps=steps)}
                          for label, widths, batch, side in HOSTS},
        "batch_norm": {"x".join(map(str, shape)): batch_norm_speedup(shape, repeats=repeats, steps=steps)
                       for shape in ((32, 4, 32, 32), (32, 8, 16, 16), (32, 16, 8, 8))},
        "environment_step": {task: env_step_speedup(task, repeats=env_repeats) for task in ("shapes", "micro")},
        "chosen": {label: image_task.prefers_channels_last(torch.device("cpu"), widths)
                   for label, widths, _, _ in HOSTS},
    }


def markdown(result: dict[str, Any], command: str) -> str:
    lines = [
        "# CNN memory format on the CPU: contiguous or channels-last",
        "",
        f"Written by `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}) on this machine "
        f"({result['cores']} CPU cores, torch {result['torch']}, {result['threads']} threads, no GPU); load "
        f"average at the start {result['load_average_at_start']}. See the script's docstring for what each "
        "figure is. Speedup = time(contiguous) / time(channels-last): above 1, channels-last is faster.",
        "",
        "## Training step of the host",
        "",
        "| host | widths | batch | px | contiguous ms (min–max) | channels-last ms (min–max) | speedup "
        "| format chosen |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, row in result["training_step"].items():
        c, n = row["step_ms"]["contiguous"], row["step_ms"]["channels_last"]
        chosen = "channels-last" if result["chosen"][label] else "contiguous"
        lines.append(f"| {label} | {','.join(map(str, row['widths']))} | {row['batch_size']} | "
                     f"{row['image_size']} | {c['median']:.2f} ({c['min']:.2f}–{c['max']:.2f}) | "
                     f"{n['median']:.2f} ({n['min']:.2f}–{n['max']:.2f}) | "
                     f"{row['channels_last_speedup']}× | {chosen} |")
    lines += ["", "## BatchNorm alone, on the default host's activations (batch 32)", "",
              "| activation | forward µs, contiguous / channels-last | speedup | forward + backward µs | speedup |",
              "|---|---|---|---|---|"]
    for shape, row in result["batch_norm"].items():
        f, b = row["forward"], row["forward_backward"]
        lines.append(f"| {shape} | {f['us']['contiguous']} / {f['us']['channels_last']} | "
                     f"{f['channels_last_speedup']}× | {b['us']['contiguous']} / {b['us']['channels_last']} | "
                     f"{b['channels_last_speedup']}× |")
    lines += ["", "## Environment step (one epoch and its decision, in-process)", "",
              "| task | contiguous steps/s | channels-last steps/s | speedup |", "|---|---|---|---|"]
    for task, row in result["environment_step"].items():
        rate = row["steps_per_second"]
        lines.append(f"| {task} | {rate['contiguous']} | {rate['channels_last']} | "
                     f"{row['channels_last_speedup']}× |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed sample")
    parser.add_argument("--env-repeats", type=int, default=5, help="timed environment steps per format")
    parser.add_argument("--out", type=Path, default=None, help="markdown to write (and .json beside it)")
    args = parser.parse_args()
    result = measure(args.repeats, args.steps, args.env_repeats)
    print(json.dumps(result, indent=2))
    if args.out is not None:
        command = " ".join([".venv/bin/python", "benchmarks/memory_format.py", *sys.argv[1:]])
        args.out.write_text(markdown(result, command), encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
