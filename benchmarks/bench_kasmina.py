"""Kasmina overhead benchmark: every figure is a ratio against plain PyTorch in this process.

Each comparison alternates its two sides (A, B, B, A, ...) for ``REPEATS`` rounds and reports
the median ratio with its min/max spread, so drift in machine load hits both sides alike.

* ``dormant_vs_plain``: a training step with every slot DORMANT / the plain host (goal ≤ 1.02).
* ``training_blending_vs_static``: a training epoch with one TRAINING and one BLENDING seed
  (SeedTrainer: per-seed optimizers, gradient-ratio tracking) / a static model with the same
  modules wired in and one optimizer (goal ≤ 1.05).
* ``counterfactual_extra_vs_validation``: (validation with one blended seed's counterfactual −
  plain validation) / plain validation, per slot position (goal ≤ 0.5).
* ``snapshot_vs_step``: one governor snapshot / one training step.

Run: ``python benchmarks/bench_kasmina.py`` (prints one JSON object; 15 interleaved repeats, about a
minute, because each measurement is only a few batches long).
"""

from __future__ import annotations

import copy
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable

import structlog
import torch
from torch import Tensor, nn

from esper_core.builtin.plugin import esper_register_alpha_schedules, esper_register_gates
from esper_core.contracts import (
    NEXT_STAGE,
    BlueprintSpec,
    GateThresholds,
    InjectionPoint,
    LifecycleSettings,
    SeedStage,
)
from esper_core.kasmina import GateSuite, MorphogeneticModel, SafetyGovernor, SeedTrainer, evaluate

BATCH = 128
BATCHES = 3
REPEATS = 15
THREADS = 2


def conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class BenchHost(nn.Module):
    """32×32 input → 32 ch → 64 ch @16² → 128 ch @8² → 10 classes; 3 injection points."""

    def __init__(self) -> None:
        super().__init__()
        self.injection_points = (InjectionPoint("stem", 32), InjectionPoint("b1", 64),
                                 InjectionPoint("b2", 128))
        self.segments = nn.ModuleList([
            conv_block(3, 32, 1),
            conv_block(32, 64, 2),
            conv_block(64, 128, 2),
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10)),
        ])

    def forward(self, x: Tensor) -> Tensor:
        for seg in self.segments:
            x = seg(x)
        return x


class ConvLight(nn.Module):
    """Residual 3×3 conv + BN + ReLU (the catalog's conv_light)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = conv_block(width, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Mixed(nn.Module):
    """Static equivalent of a slot, same arithmetic, no lifecycle machinery: the TRAINING form
    ``h + (s − s.detach())`` or the blending form ``lerp(h, s, α)``, ``s = seed(h.detach())``."""

    def __init__(self, seed: nn.Module, alpha: float | None) -> None:
        super().__init__()
        self.seed, self.alpha = seed, alpha

    def forward(self, x: Tensor) -> Tensor:
        s = self.seed(x.detach())
        if self.alpha is None:
            return x + (s - s.detach())
        return torch.lerp(x, s, self.alpha)


BLUEPRINT = BlueprintSpec(name="conv_light", topology="cnn",
                          factory=lambda *, width: ConvLight(width),
                          param_estimate=lambda w: 9 * w * w + 2 * w, description="bench seed")


def build(host: nn.Module) -> MorphogeneticModel:
    return MorphogeneticModel(
        host, slots=None, topology="cnn", lifecycle=LifecycleSettings(),
        thresholds=GateThresholds(), gates=GateSuite.from_specs(esper_register_gates(), "cnn"),
        alpha_schedules={s.name: s.factory for s in esper_register_alpha_schedules()})


def to_stage(model: MorphogeneticModel, name: str, stage: SeedStage) -> None:
    slot = model.slot(name)
    assert model.germinate(name, BLUEPRINT, epoch=0).passed
    while slot.stage is not stage:
        model._transition(slot, NEXT_STAGE[slot.stage], epoch=0, reason="bench")


def data(n: int, seed: int) -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(BATCH, 3, 32, 32, generator=g), torch.randint(0, 10, (BATCH,), generator=g))
            for _ in range(n)]


def loss_fn(out: Tensor, y: Tensor) -> Tensor:
    return nn.functional.cross_entropy(out, y)


def correct_fn(out: Tensor, y: Tensor) -> tuple[Tensor, int]:
    return (out.argmax(1) == y).sum(), int(y.numel())


def plain_epoch(model: nn.Module, opt: torch.optim.Optimizer, batches) -> None:
    model.train()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()


def plain_validation(model: nn.Module, batches) -> None:
    model.eval()
    with torch.no_grad():
        total, ok = torch.zeros(()), torch.zeros((), dtype=torch.long)
        for x, y in batches:
            out = model(x)
            total = total + loss_fn(out, y)
            ok = ok + correct_fn(out, y)[0]
        float(total), int(ok)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ratio(a: Callable[[], object], b: Callable[[], object], *, minus_one: bool = False) -> dict:
    """Median of time(a)/time(b) over interleaved repeats (after one warm-up of each)."""
    a(), b()
    ratios, ta, tb = [], [], []
    for r in range(REPEATS):
        if r % 2:
            t_b, t_a = timed(b), timed(a)
        else:
            t_a, t_b = timed(a), timed(b)
        ta.append(t_a)
        tb.append(t_b)
        ratios.append(t_a / t_b - (1.0 if minus_one else 0.0))
    return {"median": round(statistics.median(ratios), 4), "min": round(min(ratios), 4),
            "max": round(max(ratios), 4), "a_median_s": round(statistics.median(ta), 4),
            "b_median_s": round(statistics.median(tb), 4), "repeats": REPEATS}


def main() -> None:
    # This script is an entry point, so it configures logging: lifecycle logs go to stderr and
    # stdout carries only the JSON figures.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    batches = data(BATCHES, 1)
    results: dict[str, object] = {"batch": BATCH, "batches_per_measurement": BATCHES,
                                  "threads": THREADS, "torch": torch.__version__}

    # 1. dormant slots vs the plain host
    host = BenchHost()
    plain = copy.deepcopy(host)
    dormant = build(copy.deepcopy(host))
    opt_plain = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9)
    opt_dormant = torch.optim.SGD(dormant.parameters(), lr=0.01, momentum=0.9)
    results["dormant_vs_plain"] = ratio(lambda: plain_epoch(dormant, opt_dormant, batches),
                                        lambda: plain_epoch(plain, opt_plain, batches))

    # 2. one TRAINING + one BLENDING seed vs the static model with those modules
    model = build(copy.deepcopy(host))
    to_stage(model, "b1", SeedStage.TRAINING)
    to_stage(model, "b2", SeedStage.BLENDING)
    model.slot("b2").alpha = 0.5
    trainer = SeedTrainer(model, host_lr=0.01, seed_lr=0.01, optimizer="sgd")
    static_host = copy.deepcopy(host)
    seed_b1, seed_b2 = model.slot("b1").seed, model.slot("b2").seed
    assert seed_b1 is not None and seed_b2 is not None  # to_stage germinated both
    seeds = copy.deepcopy([seed_b1, seed_b2])
    static = nn.Sequential(static_host.segments[0], static_host.segments[1],
                           Mixed(seeds[0], None), static_host.segments[2],
                           Mixed(seeds[1], 0.5), static_host.segments[3])
    # The trainer's optimizers use torch's fused kernels; so does the reference.
    opt_static = torch.optim.SGD(static.parameters(), lr=0.01, momentum=0.9, fused=True)
    results["training_blending_vs_static"] = ratio(
        lambda: trainer.train_epoch(batches, loss_fn, epoch=1),
        lambda: plain_epoch(static, opt_static, batches))

    # 3. counterfactual of one blended seed vs a plain validation pass, per slot position
    cf: dict[str, object] = {}
    for name in ("stem", "b1", "b2"):
        m = build(copy.deepcopy(host))
        to_stage(m, name, SeedStage.BLENDING)
        m.slot(name).alpha = 0.5
        cf[name] = ratio(functools.partial(evaluate, m, batches, loss_fn, correct_fn, record=False),
                         functools.partial(plain_validation, m, batches), minus_one=True)
    results["counterfactual_extra_vs_validation"] = cf

    # 4. governor snapshot vs one training step (with optimizer state allocated)
    governor = SafetyGovernor(model)
    guarded = SeedTrainer(model, host_lr=0.01, seed_lr=0.01, optimizer="adamw", governor=governor)
    guarded.train_epoch(batches[:1], loss_fn, epoch=1)
    one = batches[:1]
    results["snapshot_vs_step"] = ratio(lambda: governor.snapshot(guarded.optimizers()),
                                        lambda: plain_epoch(model, guarded.host_optimizer, one))
    # and the governor's whole per-step cost (check + deferred parameter norm) vs none
    unguarded = SeedTrainer(model, host_lr=0.01, seed_lr=0.01, optimizer="adamw")
    results["governed_vs_ungoverned_epoch"] = ratio(
        lambda: guarded.train_epoch(batches, loss_fn, epoch=2),
        lambda: unguarded.train_epoch(batches, loss_fn, epoch=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
