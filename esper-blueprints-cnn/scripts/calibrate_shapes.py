"""Calibrate the ``shapes`` task: train the default host and a 4× wider one, same epochs.

Prints one JSON dict: per-epoch validation accuracy and seconds of each host, the data
generation time, and the final/best accuracies. The README's calibration figures come from
``python esper-blueprints-cnn/scripts/calibrate_shapes.py``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from esper_blueprints_cnn.tasks.procedural import make_shapes_task


def train(widths: tuple[int, ...], *, epochs: int, lr: float, weight_decay: float, seed: int) -> dict:
    start = time.perf_counter()
    task = make_shapes_task(seed=seed, device="cpu", options={"widths": list(widths)})
    generation = time.perf_counter() - start
    host = task.build_host()
    opt = torch.optim.AdamW(host.parameters(), lr=lr, weight_decay=weight_decay)
    accs, secs = [], []
    for epoch in range(epochs):
        t = time.perf_counter()
        host.train()
        for x, y in task.train_batches(epoch=epoch):
            loss = task.loss(host(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        host.eval()
        correct, total = torch.zeros((), dtype=torch.int64), 0
        with torch.no_grad():
            for x, y in task.val_batches():
                c, n = task.correct(host(x), y)
                correct += c
                total += n
        secs.append(round(time.perf_counter() - t, 3))
        accs.append(round(100.0 * correct.item() / total, 2))
    return {
        "widths": list(widths),
        "params": sum(p.numel() for p in host.parameters()),
        "generation_s": round(generation, 3),
        "val_accuracy": accs,
        "epoch_s": secs,
        "final": accs[-1],
        "best": max(accs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--widths", default="8,16,32;32,64,128")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = [
        train(tuple(int(w) for w in spec.split(",")), epochs=args.epochs, lr=args.lr,
              weight_decay=args.weight_decay, seed=args.seed)
        for spec in args.widths.split(";")
    ]
    print(json.dumps({"threads": args.threads, "epochs": args.epochs, "lr": args.lr, "runs": results}))


if __name__ == "__main__":
    main()
