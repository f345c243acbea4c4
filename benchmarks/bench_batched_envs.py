"""Can N episodes step as one computation faster than one after another? Environment throughput
and its roofline on this machine.

    .venv/bin/python benchmarks/bench_batched_envs.py --out docs/batched_environments.md

**Throughput.** Environment steps (one epoch of one host plus its decision) per second of today's
environments, ``InProcessEnvironments`` and ``WorkerEnvironments`` (one process each), at
N = 1, 8, 32, 64 on ``micro`` and on the default task (``shapes``): every environment starts
its episode and takes ``--steps`` more steps under the no-seed decision (``wait``), so the
figure is the environments' own cost, not a policy's.

**Roofline.** What stepping N hosts as one computation could gain, measured on the task's own
host and batch (the same process, so the ratios hold on a busy machine):

* ``one``: one host's training step (forward, backward, AdamW) on one batch — what an
  environment does ~``batches per epoch`` times per step;
* ``vmap``: N hosts stacked with ``torch.func.stack_module_state`` and stepped together by
  ``vmap(functional_call)`` (each its own batch) — the batched-environment design the issue
  proposes;
* ``ceiling``: one host on one batch N times as large — the same arithmetic as N hosts with
  none of their per-host overhead; no batched-environment implementation can beat it;
* FLOPs of one step from ``torch.utils.flop_counter.FlopCounterMode``, giving achieved GFLOP/s.

The speedup of a design is ``N × time(one) / time(design)``. Prints one JSON object and, with
``--out``, writes the markdown that quotes it (and the JSON beside it).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from growth_lib import resolve
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.utils.flop_counter import FlopCounterMode

from esper_core.contracts.decisions import Decision, Op
from esper_core.setup.tasks import build_task
from esper_core.tolaria.environments import InProcessEnvironments, WorkerEnvironments


def env_steps_per_second(task: str, n: int, steps: int, workers: bool) -> float:
    resolved = resolve(task=task, policy="noop", seed=0)
    cls = WorkerEnvironments if workers else InProcessEnvironments
    envs = cls(resolved, n_envs=n, device="cpu", emit=lambda event: None, policy_name="noop")
    try:
        start = time.perf_counter()
        envs.start(list(range(n)), [2 * k for k in range(n)])
        for _ in range(steps):
            envs.step([Decision(op=Op.WAIT)] * n)
        return n * (steps + 1) / (time.perf_counter() - start)
    finally:
        envs.close()


def best_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN primitive caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stacked(built: Any, x: torch.Tensor, y: torch.Tensor, n: int, t_one: float, flops: int, repeats: int,
            one_step: Callable[[torch.Tensor, torch.Tensor], None]) -> dict[str, float]:
    """N hosts stepped as one ``vmap`` computation, and the ceiling (one host, N× the batch)."""
    loss_fn = nn.functional.cross_entropy
    hosts = [built.build_host() for _ in range(n)]
    params, buffers = stack_module_state(hosts)
    template = copy.deepcopy(hosts[0]).to("meta")
    stacked_opt = torch.optim.AdamW(list(params.values()), lr=1e-3)
    xs, ys = x.expand(n, *x.shape).contiguous(), y.expand(n, *y.shape).contiguous()

    def host_loss(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], inputs: torch.Tensor,
                  targets: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(template, (p, b), (inputs,)), targets)

    batched = vmap(host_loss, randomness="different")

    def vmap_step() -> None:
        stacked_opt.zero_grad(set_to_none=True)
        batched(params, buffers, xs, ys).sum().backward()
        stacked_opt.step()

    big_x, big_y = xs.reshape(-1, *x.shape[1:]), ys.reshape(-1)
    t_vmap = best_time(vmap_step, repeats)
    t_ceiling = best_time(lambda: one_step(big_x, big_y), repeats)
    return {
        "vmap_ms": round(t_vmap * 1e3, 2), "ceiling_ms": round(t_ceiling * 1e3, 2),
        "vmap_speedup": round(n * t_one / t_vmap, 2), "ceiling_speedup": round(n * t_one / t_ceiling, 2),
        "vmap_gflops": round(n * flops / t_vmap / 1e9, 2), "ceiling_gflops": round(n * flops / t_ceiling / 1e9, 2),
    }


def roofline(task: str, counts: list[int], repeats: int) -> dict[str, Any]:
    resolved = resolve(task=task, policy="noop", seed=0)
    built = build_task(resolved, seed=0, device="cpu")
    x, y = next(iter(built.train_batches(epoch=1)))
    loss_fn = nn.functional.cross_entropy
    host = built.build_host()
    opt = torch.optim.AdamW(host.parameters(), lr=1e-3)

    def one_step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(host(inputs), targets).backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        one_step(x, y)
    flops = counter.get_total_flops()
    t_one = best_time(lambda: one_step(x, y), repeats * 4)
    out: dict[str, Any] = {
        "batch": list(x.shape), "host_params": sum(p.numel() for p in host.parameters()),
        "step_mflop": round(flops / 1e6, 2), "one_ms": round(t_one * 1e3, 3),
        "one_gflops": round(flops / t_one / 1e9, 2), "threads": torch.get_num_threads(), "n": {},
    }
    for n in counts:
        out["n"][str(n)] = stacked(built, x, y, n, t_one, flops, repeats, one_step)
    # A plain convolution of the host's first layer alone, batch B and 64·B: the arithmetic rate this
    # CPU reaches on these shapes when nothing else is in the way.
    conv = next(m for m in host.modules() if isinstance(m, nn.Conv2d))
    for label, inputs in (("conv_b", x), ("conv_64b", x.repeat(64, 1, 1, 1))):
        with FlopCounterMode(display=False) as counter:
            conv(inputs)
        conv_flops = counter.get_total_flops()
        with torch.no_grad():
            t_conv = best_time(functools.partial(conv, inputs), repeats * 4)
        out[label] = {"shape": list(inputs.shape), "gflops": round(conv_flops / t_conv / 1e9, 2)}
    return out


def render(result: dict[str, Any], argv: list[str]) -> str:
    lines = [
        "# Batched environments: throughput and roofline",
        "",
        f"Written by `.venv/bin/python benchmarks/bench_batched_envs.py {' '.join(argv)}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}) on this machine "
        f"({result['cpus']} CPU cores, torch {torch.__version__}, no GPU); load average at the start "
        f"{result['load']}. See the script's docstring for what each figure is.",
        "",
        "## Environment steps per second (epoch + decision, no-seed decisions)",
        "",
        "| task | mode | " + " | ".join(f"N = {n}" for n in result["counts"]) + " |",
        "|---|---|" + "---|" * len(result["counts"]),
    ]
    for task, modes in result["throughput"].items():
        for mode, per_n in modes.items():
            lines.append(f"| {task} | {mode} | " + " | ".join(f"{per_n[str(n)]:.2f}" for n in result["counts"]) + " |")
    lines += ["", "## Roofline of one training step of the host", ""]
    for task, r in result["roofline"].items():
        lines += [
            f"**{task}**: batch {r['batch']}, host {r['host_params']} parameters, {r['step_mflop']} MFLOP per "
            f"step (forward + backward), one host {r['one_ms']} ms = {r['one_gflops']} GFLOP/s with "
            f"{r['threads']} threads. A plain convolution of its first layer reaches {r['conv_b']['gflops']} GFLOP/s "
            f"at batch {r['conv_b']['shape'][0]} and {r['conv_64b']['gflops']} GFLOP/s at batch "
            f"{r['conv_64b']['shape'][0]}.",
            "",
            "| N | vmap of N hosts (ms) | speedup | GFLOP/s | one host, N× batch (ms) | speedup (ceiling) | GFLOP/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for n, v in r["n"].items():
            lines.append(f"| {n} | {v['vmap_ms']} | {v['vmap_speedup']}× | {v['vmap_gflops']} | {v['ceiling_ms']} | "
                         f"{v['ceiling_speedup']}× | {v['ceiling_gflops']} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="micro,shapes")
    parser.add_argument("--counts", default="1,8,32,64")
    parser.add_argument("--steps", type=int, default=2, help="steps after the first epoch, per environment")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    tasks = args.tasks.split(",")
    result: dict[str, Any] = {"cpus": os.cpu_count(), "load": round(os.getloadavg()[0], 2), "counts": counts,
                              "throughput": {}, "roofline": {}}
    for task in tasks:
        result["roofline"][task] = roofline(task, [c for c in counts if c > 1], args.repeats)
        print(json.dumps({task: result["roofline"][task]}), file=sys.stderr)
    if not args.skip_throughput:
        for task in tasks:
            modes: dict[str, dict[str, float]] = {}
            for workers in (False, True):
                mode = "worker processes" if workers else "in-process"
                modes[mode] = {str(n): round(env_steps_per_second(task, n, args.steps, workers), 3) for n in counts}
                print(json.dumps({task: {mode: modes[mode]}}), file=sys.stderr)
            result["throughput"][task] = modes
    print(json.dumps(result, indent=1))
    if args.out is not None:
        args.out.write_text(render(result, sys.argv[1:]))
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
