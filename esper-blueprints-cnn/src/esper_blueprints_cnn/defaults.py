"""CNN seed-mechanics defaults and task run defaults (torch-free).

Why these values (measured with ``benchmarks/growth_study.py``; docs/growth.md):

* ``detach_host_in_blending=False``: detached, the host layers upstream of a blending seed learn
  only through the ``(1 − α)`` path, so once α nears 1 (the end of BLENDING, SHADOWING and
  PROBATIONARY: about seven epochs) they stop learning at all. Measured on the default
  ``shapes`` task (docs/growth.md, heuristic variants, seeds 0–2): with the seeds' host input
  detached the grown model ended at 62.65–64.35 % validation accuracy; with the host trained
  through the blending seed, 63.45–71.50 %, the best of every variant tried.
* ``g2_test="not_worse"``: in TRAINING a seed learns against a host that has not adapted to it,
  so its gain over the no-seed path is small even for a seed that pays once blended (a
  ``conv_light`` in ``block2``: −1 to +1.5 points over 22 TRAINING epochs, docs/growth.md,
  while the same architecture trained statically is 5+ points better than the host). G2
  therefore blends every seed that is not measurably harmful (upper confidence bound of the gain
  ≥ 0) and leaves the verdict to G5, on the blended seed. Measured against requiring a
  significantly positive gain: 63.75–65.30 against 61.75–64.20 % (same three seeds).
* ``g2_gradient_ratio=0.05``: the seeds start at identity with a zero-initialised last layer
  or scale, so right after germination only that layer receives gradient and the
  parameter-normalised ratio starts small; 0.05 passes a seed that has begun learning within
  its TRAINING epoch while still refusing one whose gradient has collapsed (trained with
  feedback, the seeds of the growth study measured 0.1–1.5).
* ``g2_min_improvement=0.0`` and ``g5_min_contribution=0.0`` with ``confidence_z=1.645`` (the
  core defaults): G2 refuses a seed whose upper 95 % confidence bound of its gain over the
  no-seed path is below zero, G5 fossilizes only when the lower bound of its contribution is
  above zero. Both are paired per-example statistics on the 2,000-image ``shapes`` validation split, whose standard
  error is typically 0.3–0.5 points for a seed in TRAINING (docs/growth.md). A point estimate
  at one-image resolution was a coin flip (+0.20, +0.10, −1.75, −0.45, +0.35 points at the
  first G2 check of one blueprint over five seeds), and blending trains the host *with* the
  seed, so a harmful seed leaves its mark even if culled later (``correlated_noise`` ended 1.10
  points below the baseline when G2 let it through at −0.50).
* ``g2_min_epochs=1``, ``blending_epochs=2`` and ``g3_min_epochs=2``: a seed is judged after one
  TRAINING epoch and blended in over two, so it joins the host while the learning rate is still
  high. Measured on the default ``shapes`` task (docs/growth.md, heuristic variants, seeds
  0–2, final validation accuracy): 70.40, 71.20, 72.90 % against 69.05, 71.50, 65.10 % with
  two TRAINING epochs and five of blending (71.70, 71.00, 71.25 % with one of blending). With
  the tanh schedule α reaches ≥ 0.95 only at the end of the ramp, so G3's epochs equal the
  ramp's.
"""

from __future__ import annotations

from typing import Any

from esper_core.contracts.run_defaults import RunDefaults
from esper_core.contracts.settings import GateThresholds, LifecycleSettings, TopologyDefaults

CNN_DEFAULTS = TopologyDefaults(
    gates=GateThresholds(
        g2_min_epochs=1,
        g2_min_improvement=0.0,
        g2_test="not_worse",
        g2_gradient_ratio=0.05,
        g3_min_alpha=0.95,
        g3_min_epochs=2,
        g4_window=1,
        g5_min_contribution=0.0,
    ),
    lifecycle=LifecycleSettings(
        alpha_schedule="tanh",
        blending_epochs=2,
        alpha_temperature=1.0,
        detach_host_in_blending=False,
        auto_advance=True,
        probation_epochs=5,
        embargo_epochs=5,
        resetting_epochs=1,
    ),
)

#: Blueprints offered by default: the original CNN set (catalog 1–7).
DEFAULT_BLUEPRINTS = (
    "conv_light",
    "attention",
    "norm",
    "depthwise",
    "bottleneck",
    "conv_small",
    "conv_heavy",
)
DEFAULT_SLOTS = ("block2", "block3")
#: The ``shapes`` host's block widths (chosen from static runs, see ``SHAPES_DEFAULTS``).
SHAPES_WIDTHS = (4, 8, 16)
#: ``shapes`` offers every block: the heuristic buys a blueprint where it costs the fewest
#: parameters, and on this host a 3×3 residual conv costs 156 parameters after block 1 against
#: 2,352 after block 3.
SHAPES_SLOTS = ("block1", "block2", "block3")


def run_defaults(**overrides: Any) -> RunDefaults:
    """The CNN tasks' run defaults with ``overrides`` (flat keys: ``epochs``, ``lr`` ...)."""
    base: dict[str, Any] = {
        "epochs": 25,
        "batch_size": 128,
        "lr": 3e-3,
        "seed_lr": 3e-3,
        "weight_decay": 5e-4,
        "optimizer": "adamw",
        "slots": DEFAULT_SLOTS,
        "blueprints": DEFAULT_BLUEPRINTS,
    }
    base.update(overrides)
    return RunDefaults.from_mapping(base, owner="CNN run defaults")


#: ``shapes``: the host (4/8/16 channels, see ``tasks/procedural.py``) and its recipe were chosen
#: from static runs alone, before any growth run (``benchmarks/growth_study.py --only recipe``,
#: docs/growth.md): AdamW at a peak lr of 1e-2 with a cosine decay over the 25 epochs was the
#: best of constant, step and cosine schedules at 5e-3 and 1e-2, and the host is the smallest
#: whose 2×-wide version gains ≥ 6 points with it, so capacity, not the schedule, limits it. The
#: previous default (lr ×0.1 at epoch 9) manufactured a plateau by starving the host. Seeds keep
#: a constant ``seed_lr`` (1e-2) until they fossilize and join the host's schedule.
#: Up to three live seeds (one per block): grown together from the start, the seeds have the
#: whole high-learning-rate part of the schedule to integrate with the host (docs/growth.md).
SHAPES_DEFAULTS = run_defaults(
    batch_size=32, lr=1e-2, seed_lr=1e-2, lr_schedule="cosine", slots=SHAPES_SLOTS, max_seeds=3,
)
CIFAR10_DEFAULTS = run_defaults(epochs=30, lr=2e-3, seed_lr=2e-3)
CIFAR100_DEFAULTS = run_defaults(epochs=40, lr=2e-3, seed_lr=2e-3)
