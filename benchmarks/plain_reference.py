"""The plain PyTorch reference the benchmarks compare Esper against: the default task's host
trained by a bare ``zero_grad``/forward/backward/AdamW-step loop, validated every epoch.

Imported by ``bench_engine`` (per-epoch time, in the same process), and run as a command by
``bench_cli`` for the whole-process figures (peak resident memory of the same work as the
default ``esper run``, in a process of its own):

    python benchmarks/plain_reference.py [--epochs 25] [--seed 0]

It prints one JSON object: the epochs trained, the final validation accuracy (at a constant
learning rate, without the run's schedule: the reference measures cost, not accuracy) and the
wall-clock time (``time.time()``) at the end of its first epoch.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch


class PlainLoop:
    """The reference: the same host and data, no Esper machinery at all."""

    def __init__(self, host: torch.nn.Module, task: Any, lr: float, weight_decay: float) -> None:
        self.host, self.task = host, task
        # torch's fused AdamW kernel, as the engine's trainer steps it. Not torch.optim.AdamW
        # itself: its first step imports torch._dynamo (2.6 s and 150 MB with the CUDA build),
        # which the engine never pays, so a reference paying it would flatter Esper's start-up
        # and memory. esper_core.kasmina.optimizers calls the same kernel, bit for bit.
        from esper_core.kasmina.optimizers import adam

        self.optimizer = adam(list(host.parameters()), lr=lr, decoupled=True, weight_decay=weight_decay)

    def epoch(self, epoch: int) -> tuple[float, float, float]:
        """Train one epoch, then validate; the metrics any training loop reports (mean training
        loss, validation loss and accuracy), as the engine reports them."""
        host, task = self.host, self.task
        host.train()
        train_loss, steps = torch.zeros(()), 0
        for x, y in task.train_batches(epoch=epoch):
            self.optimizer.zero_grad(set_to_none=True)
            loss = task.loss(host(x), y)
            loss.backward()
            self.optimizer.step()
            train_loss += loss.detach()
            steps += 1
        host.eval()
        val_loss, correct, count = torch.zeros(()), torch.zeros(()), 0
        with torch.no_grad():
            for x, y in task.val_batches():
                out = host(x)
                n_ok, n = task.correct(out, y)
                val_loss += task.loss(out, y) * n
                correct += n_ok
                count += n
        return float(train_loss) / steps, float(val_loss) / count, 100.0 * float(correct) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # The default task and its settings, built the way `esper run` builds them; nothing of the
    # run engine (Kasmina's model, trainer, governor, policy, telemetry) is used.
    from esper_core.config import RunConfig
    from esper_core.plugins import PluginSettings, build_catalog, load_plugins
    from esper_core.setup.resolve import resolve_run
    from esper_core.setup.seeding import choose_threads
    from esper_core.setup.tasks import build_task

    catalog = build_catalog(load_plugins(PluginSettings(autoload=True)))
    resolved = resolve_run(RunConfig.from_dict({"run": {"seed": args.seed}}), catalog)
    task = build_task(resolved, seed=args.seed, device="cpu")
    host = task.build_host()
    threads = choose_threads(0, "cpu", sum(p.numel() for p in host.parameters()))
    if threads is not None:
        torch.set_num_threads(threads)
    loop = PlainLoop(host, task, resolved.training.lr, resolved.training.weight_decay)
    accuracy, first_epoch_at = 0.0, 0.0
    for epoch in range(1, args.epochs + 1):
        accuracy = loop.epoch(epoch)[2]
        first_epoch_at = first_epoch_at or time.time()
    print(json.dumps({"epochs": args.epochs, "final_accuracy": round(accuracy, 2),
                      "first_epoch_at": first_epoch_at}))


if __name__ == "__main__":
    main()
