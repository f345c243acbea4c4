"""Measure the G2 gradient ratio of every transformer blueprint on the default text task.

Trains the default GPT host on ``pytext`` for a few warm-up epochs (seeds are germinated on a
plateau, not at step 0), then, for each blueprint and slot, plants the seed in TRAINING — the
seed reads ``h.detach()`` and the slot outputs ``h + (s − s.detach())`` (DESIGN §4) — and trains
host and seed together with separate AdamW optimisers. Every step records the parameter-
normalised gradient ratio

    r = (‖g_seed‖ / √n_seed) / (‖g_host‖ / √n_host)

(0 when ‖g_host‖ < 1e-8 or the seed has no parameters; clamped to 10), and its bias-corrected
EMA (decay 0.9) as G2 would see it at each epoch end.

It then measures what detaching the host input during BLENDING would do: with the seed at
α ∈ {0.5, 0.95}, the norm of the gradient reaching the layers *upstream* of the slot, with the
seed reading ``h.detach()`` versus ``h``.

    .venv/bin/python benchmarks/measure_transformer_gates.py [--warmup 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time

import torch
from torch import nn

from esper_blueprints_transformer import plugin
from esper_blueprints_transformer.host import GPTHost
from esper_blueprints_transformer.tasks.text import TextTask, pytext_task

EMA_DECAY = 0.9
RATIO_CLAMP = 10.0


def grad_norm(params: list[nn.Parameter]) -> tuple[float, int]:
    grads = [p.grad for p in params if p.grad is not None]
    n = sum(p.numel() for p in params)
    if not grads:
        return 0.0, n
    return torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item(), n


def ratio(seed_params: list[nn.Parameter], host_params: list[nn.Parameter]) -> float:
    g_seed, n_seed = grad_norm(seed_params)
    g_host, n_host = grad_norm(host_params)
    if n_seed == 0 or g_host < 1e-8:
        return 0.0
    return min(RATIO_CLAMP, (g_seed / math.sqrt(n_seed)) / (g_host / math.sqrt(n_host)))


def forward_with_seed(host: GPTHost, idx: torch.Tensor, slot: int, seed: nn.Module,
                      *, alpha: float | None, detach: bool) -> torch.Tensor:
    """Run the host with ``seed`` after segment ``slot``: TRAINING (STE) when alpha is None."""
    x = idx
    for i, segment in enumerate(host.segments):
        x = segment(x)
        if i == slot:
            if alpha is None:
                s = seed(x.detach())
                x = x + (s - s.detach())
            else:
                s = seed(x.detach() if detach else x)
                x = x + alpha * (s - x)
    return x


def warm_up(task: TextTask, epochs: int) -> GPTHost:
    host = task.build_host()
    opt = torch.optim.AdamW(host.parameters(), lr=3e-3, weight_decay=0.01)
    for epoch in range(epochs):
        for x, y in task.train_batches(epoch=epoch):
            opt.zero_grad(set_to_none=True)
            task.loss(host(x), y).backward()
            opt.step()
    return host


def measure_training(task: TextTask, base: GPTHost, spec: object, slot: int, *,
                     start_epoch: int, epochs: int) -> dict[str, object]:
    host = copy.deepcopy(base)
    torch.manual_seed(1234)
    seed = spec.factory(width=host.injection_points[slot].width)  # type: ignore[attr-defined]
    host_params = list(host.parameters())
    seed_params = list(seed.parameters())
    host_opt = torch.optim.AdamW(host_params, lr=3e-3, weight_decay=0.01)
    seed_opt = torch.optim.AdamW(seed_params, lr=3e-3, weight_decay=0.01) if seed_params else None
    ratios: list[float] = []
    ema, updates, ema_at_epoch_end = 0.0, 0, []
    for epoch in range(start_epoch, start_epoch + epochs):
        for x, y in task.train_batches(epoch=epoch):
            host_opt.zero_grad(set_to_none=True)
            if seed_opt is not None:
                seed_opt.zero_grad(set_to_none=True)
            task.loss(forward_with_seed(host, x, slot, seed, alpha=None, detach=True), y).backward()
            r = ratio(seed_params, host_params)
            ratios.append(r)
            updates += 1
            ema = EMA_DECAY * ema + (1 - EMA_DECAY) * r
            host_opt.step()
            if seed_opt is not None:
                seed_opt.step()
        ema_at_epoch_end.append(ema / (1 - EMA_DECAY**updates))
    quantiles = statistics.quantiles(ratios, n=10)
    return {
        "first_step": round(ratios[0], 4),
        "p10": round(quantiles[0], 4),
        "median": round(statistics.median(ratios), 4),
        "p90": round(quantiles[-1], 4),
        "ema_epoch_end": [round(v, 4) for v in ema_at_epoch_end],
        "params": sum(p.numel() for p in seed_params),
    }


def measure_detach(task: TextTask, base: GPTHost, spec: object, slot: int) -> dict[str, float]:
    """‖∇ upstream‖ with the seed reading h.detach() divided by that with it reading h."""
    x, y = task.val_batches()[0]
    torch.manual_seed(1234)
    seed = spec.factory(width=base.injection_points[slot].width)  # type: ignore[attr-defined]
    # A trained seed is not the identity; give its zero-initialised output layer weights so the
    # measurement reflects a seed that has learned something.
    with torch.no_grad():
        for p in seed.parameters():
            if torch.count_nonzero(p) == 0 and p.dim() > 1:
                p.normal_(0.0, 0.02)
    upstream = [p for i in range(slot + 1) for p in base.segments[i].parameters()]
    out: dict[str, float] = {}
    for alpha in (0.5, 0.95):
        norms = {}
        for detach in (True, False):
            base.zero_grad(set_to_none=True)
            task.loss(forward_with_seed(base, x, slot, seed, alpha=alpha, detach=detach), y).backward()
            norms[detach] = grad_norm(upstream)[0]
        out[f"alpha_{alpha}"] = round(norms[True] / norms[False], 4)
    base.zero_grad(set_to_none=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=3, help="host-only epochs before germination")
    parser.add_argument("--epochs", type=int, default=2, help="epochs each seed spends in TRAINING")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = pytext_task(seed=0, device="cpu", options={})
    started = time.perf_counter()
    base = warm_up(task, args.warmup)
    blueprints = plugin.esper_register_blueprints()
    training: dict[str, dict[str, object]] = {}
    detach: dict[str, dict[str, float]] = {}
    for spec in blueprints:
        for slot, point in enumerate(base.injection_points):
            key = f"{spec.name}@{point.name}"
            training[key] = measure_training(task, base, spec, slot, start_epoch=args.warmup,
                                             epochs=args.epochs)
            if spec.name in ("mlp", "attention", "lora"):
                detach[key] = measure_detach(task, base, spec, slot)
            print(key, json.dumps(training[key]), flush=True)
    print(json.dumps({
        "task": "pytext", "warmup_epochs": args.warmup, "training_epochs": args.epochs,
        "steps_per_epoch": task.steps_per_epoch, "seconds": round(time.perf_counter() - started, 1),
        "gradient_ratio": training,
        "upstream_grad_detached_over_attached": detach,
    }, indent=1))


if __name__ == "__main__":
    main()
