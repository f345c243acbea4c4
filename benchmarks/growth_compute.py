"""Training compute of an episode, in multiply-adds, for the growth study.

Counted per example from the network's own operations (``torch.utils.flop_counter`` on a batch
of one: every matmul, convolution and attention product; 1 multiply-add = 2 FLOPs), then
multiplied by what each epoch of the episode actually ran, read from its ``EpochEnded`` events:

* training, per example: the forward of the model as it stands (host, plus every seed that is
  blended or fossilized) and its backward, taken as twice the forward (the usual estimate:
  gradients with respect to activations and to weights each cost about one forward);
* a seed in TRAINING with the feedback objective adds a forward and backward of itself and of
  the downstream suffix on every training example;
* validation, per example: one forward, plus per TRAINING seed its gain pass (seed + suffix),
  plus per blended seed its "seed removed" pass (the suffix);
* the final pass over the test split is the same for every method and left out, as is the
  no-growth baseline episode that ``esper run`` trains beside the policy's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

BLENDED = {"BLENDING", "SHADOWING", "PROBATIONARY"}


def _flops(fn: Any, *args: Any) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


class ComputeModel:
    """Per-example multiply-adds of each host segment and of each (slot, blueprint) seed."""

    def __init__(self, model: Any, task: Any, blueprints: Sequence[Any]) -> None:
        x, _ = next(iter(task.val_batches()))
        # Two examples, halved below: a blueprint normalising over the batch (a discovered
        # NORM after a global pool) cannot run on one.
        h = x[:2]
        model.eval()
        self.points = {s.name: model.point_index(s) for s in model.all_slots()}
        acts = []
        segments = list(model.host.segments)
        self.segment_macs = []
        for i, segment in enumerate(segments):
            self.segment_macs.append(_flops(segment, h) // 4)
            with torch.no_grad():
                h = segment(h)
            if i < len(segments) - 1:
                acts.append(h)
        self.seed_macs: dict[tuple[str, str], int] = {}
        by_point = {p: name for name, p in self.points.items()}
        for p, act in enumerate(acts):
            name = by_point.get(p)
            if name is None:
                continue
            width = model.slot(name).point.width
            for spec in blueprints:
                try:
                    seed = spec.factory(width=width).to(act.device).eval()
                except Exception:  # a blueprint that does not build here is never germinated
                    continue
                self.seed_macs[(name, spec.key)] = _flops(seed, act) // 4
        self.train_examples = sum(int(y.shape[0]) for _, y in task.train_batches(epoch=1))
        self.val_examples = sum(int(y.shape[0]) for _, y in task.val_batches())

    def suffix(self, slot: str, seeds: Mapping[str, str]) -> int:
        """Forward multiply-adds downstream of ``slot`` (segments and seeds in the forward)."""
        p = self.points[slot]
        total = sum(self.segment_macs[p + 1:])
        for name, key in seeds.items():
            if self.points[name] > p:
                total += self.seed_macs[(name, key)]
        return total

    def episode(self, stages: Sequence[Sequence[tuple[str, str, str | None]]],
                feedback: bool = True) -> int:
        """Multiply-adds of an episode whose epoch ``e`` ran with slots ``stages[e]``
        (``(slot, stage name, blueprint)`` per slot)."""
        host = sum(self.segment_macs)
        total = 0
        for epoch in stages:
            in_forward = {slot: bp for slot, stage, bp in epoch
                          if bp is not None and (stage in BLENDED or stage == "FOSSILIZED")}
            forward = host + sum(self.seed_macs[(s, bp)] for s, bp in in_forward.items())
            train, val = 3 * forward, forward
            for slot, stage, bp in epoch:
                if bp is None:
                    continue
                if stage == "TRAINING":
                    extra = self.seed_macs[(slot, bp)] + self.suffix(slot, in_forward)
                    train += 3 * extra if feedback else 3 * self.seed_macs[(slot, bp)]
                    val += extra
                elif stage in BLENDED:
                    val += self.suffix(slot, in_forward)
            total += train * self.train_examples + val * self.val_examples
        return total
