"""The CNN blueprint catalog and task specs, built without importing torch.

Factories are :func:`esper_core.lazy.lazy` references (torch is imported only when a module is
built); parameter estimates are the pure-Python functions of :mod:`esper_blueprints_cnn.estimates`.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import frozen

from esper_blueprints_cnn import estimates
from esper_blueprints_cnn.defaults import (
    CIFAR10_DEFAULTS,
    CIFAR100_DEFAULTS,
    CNN_DEFAULTS,
    SHAPES_DEFAULTS,
    SHAPES_WIDTHS,
)
from esper_blueprints_cnn.micro import MICRO_DEFAULTS, MICRO_KASMINA
from esper_core.contracts.specs import BlueprintSpec, TaskSpec
from esper_core.lazy import lazy

#: Own data gets the CIFAR-10 recipe (AdamW, 30 epochs): the general-purpose image recipe here,
#: where ``shapes``' is tuned to one tiny procedural dataset.
OWN_DATA_DEFAULTS = CIFAR10_DEFAULTS

TOPOLOGY = "cnn"
_PKG = "esper_blueprints_cnn"


@frozen
class Entry:
    index: int
    name: str
    module: str  # submodule of esper_blueprints_cnn.blueprints holding the factory
    description: str
    paper: str | None


#: Token forms (esper_core.discovery grammar) of the blueprints the grammar can express; each
#: compiles to a module with the same layers and parameter count as the hand-written one.
TOKENS: dict[str, tuple[str, ...]] = {
    "noop": ("IDENTITY",),
    "conv_light": tuple("RES_START CONV KERNEL_3 OUT_IN NORM RELU SCALE RES_END".split()),
    "attention": tuple("GATE_START POOL_GLOBAL LINEAR OUT_D4 RELU LINEAR OUT_IN ZERO_INIT GATE_END".split()),
    "norm": tuple("RES_START NORM SCALE RES_END".split()),
    "depthwise": tuple(("RES_START CONV KERNEL_3 DEPTHWISE OUT_IN NORM RELU "
                        "CONV KERNEL_1 OUT_IN ZERO_INIT RES_END").split()),
    "bottleneck": tuple(("RES_START CONV KERNEL_1 OUT_D4 NORM RELU CONV KERNEL_3 OUT_D4 NORM RELU "
                         "CONV KERNEL_1 OUT_IN ZERO_INIT RES_END").split()),
    "conv_small": tuple("RES_START CONV KERNEL_1 OUT_IN ZERO_INIT RES_END".split()),
    "conv_heavy": tuple(("RES_START CONV KERNEL_3 OUT_IN NORM RELU SCALE RES_END "
                         "RES_START CONV KERNEL_3 OUT_IN NORM RELU SCALE RES_END").split()),
    "dilated": tuple("RES_START CONV KERNEL_3 DILATE_2 OUT_IN NORM RELU SCALE RES_END".split()),
}


#: Catalog indices 0–7 and 13–23 (DESIGN §8). Every one of them starts at identity.
ENTRIES: tuple[Entry, ...] = (
    Entry(0, "noop", "basic", "identity: the control seed, no parameters", None),
    Entry(1, "conv_light", "basic", "residual 3×3 conv + GroupNorm + ReLU, zero-init scale",
          "He et al. 2016, Deep Residual Learning for Image Recognition"),
    Entry(2, "attention", "attention", "squeeze-and-excitation channel gate, zero-init excitation",
          "Hu et al. 2018, Squeeze-and-Excitation Networks"),
    Entry(3, "norm", "basic", "learnable-scaled GroupNorm residual",
          "Wu & He 2018, Group Normalization"),
    Entry(4, "depthwise", "efficient", "depthwise 3×3 + pointwise 1×1 (zero-init), residual",
          "Howard et al. 2017, MobileNets"),
    Entry(5, "bottleneck", "efficient", "1×1 down ×4, 3×3, 1×1 up (zero-init), residual",
          "He et al. 2016, Deep Residual Learning for Image Recognition"),
    Entry(6, "conv_small", "basic", "zero-init 1×1 conv residual", None),
    Entry(7, "conv_heavy", "basic", "two conv_light blocks in sequence",
          "He et al. 2016, Deep Residual Learning for Image Recognition"),
    Entry(13, "dilated", "basic", "conv_light with dilation 2 (5×5 receptive field)",
          "Yu & Koltun 2016, Multi-Scale Context Aggregation by Dilated Convolutions"),
    Entry(14, "asymmetric", "convs", "factorised 3×1 + 1×3 conv residual",
          "Szegedy et al. 2016, Rethinking the Inception Architecture"),
    Entry(15, "coord", "convs", "3×3 conv over features + coordinate channels, residual",
          "Liu et al. 2018, An Intriguing Failing of CNNs and the CoordConv Solution"),
    Entry(16, "gated", "convs", "gated 3×3 conv a·σ(b), residual",
          "Dauphin et al. 2017, Language Modeling with Gated Convolutional Networks"),
    Entry(17, "eca", "attention", "efficient channel attention: 1-D conv over pooled channels",
          "Wang et al. 2020, ECA-Net"),
    Entry(18, "spatial_attention", "attention", "CBAM spatial gate from channel mean and max",
          "Woo et al. 2018, CBAM: Convolutional Block Attention Module"),
    Entry(19, "shift", "efficient", "zero-parameter spatial shift + 1×1 conv residual",
          "Wu et al. 2018, Shift: A Zero FLOP, Zero Parameter Alternative to Spatial Convolutions"),
    Entry(20, "shuffle", "efficient", "grouped 1×1, channel shuffle, depthwise 3×3, residual",
          "Zhang et al. 2018, ShuffleNet"),
    Entry(21, "reparam", "convs", "parallel 3×3 + 1×1 convs, foldable into one 3×3, residual",
          "Ding et al. 2021, RepVGG: Making VGG-style ConvNets Great Again"),
    Entry(22, "mixdw", "efficient", "mixed 3/5/7 depthwise kernels + pointwise, residual",
          "Tan & Le 2019, MixConv: Mixed Depthwise Convolutional Kernels"),
    Entry(23, "laplacian", "convs", "fixed Laplacian edge filter + learned 1×1 projection, residual",
          None),
)


def blueprint_specs() -> list[BlueprintSpec]:
    specs = []
    for e in ENTRIES:
        estimate: Callable[[int], int] = getattr(estimates, e.name)
        specs.append(
            BlueprintSpec(
                name=e.name,
                topology=TOPOLOGY,
                factory=lazy(f"{_PKG}.blueprints.{e.module}:{e.name}"),
                param_estimate=estimate,
                description=e.description,
                action_index=e.index,
                identity_at_init=True,
                paper=e.paper,
                metadata={"family": e.module},
                tokens=TOKENS.get(e.name),
            )
        )
    return specs


#: The widest block of the shapes host (``esper blueprints`` prices blueprints at it).
SHAPES_SLOT_WIDTH = max(SHAPES_WIDTHS)


def task_specs() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="shapes",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.procedural:make_shapes_task"),
            description="procedural 32×32 shapes × textures, 10 classes (embedded, no download)",
            defaults=SHAPES_DEFAULTS,
            kasmina=CNN_DEFAULTS,
            slot_width=SHAPES_SLOT_WIDTH,
        ),
        TaskSpec(
            name="micro",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.procedural:make_micro_task"),
            description=(
                "tiny 16×16 shapes for developing controllers (PPO) in CI: ~0.1 s/epoch on one "
                "CPU thread, a quick plateau and a short lifecycle"
            ),
            defaults=MICRO_DEFAULTS,
            kasmina=MICRO_KASMINA,
        ),
        TaskSpec(
            name="cifar10",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.cifar:make_cifar10_task"),
            description="CIFAR-10 via torchvision (download only with the download option)",
            defaults=CIFAR10_DEFAULTS,
            kasmina=CNN_DEFAULTS,
        ),
        TaskSpec(
            name="cifar100",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.cifar:make_cifar100_task"),
            description="CIFAR-100 (fine labels) via torchvision (download only when asked)",
            defaults=CIFAR100_DEFAULTS,
            kasmina=CNN_DEFAULTS,
        ),
        TaskSpec(
            name="imagefolder",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.own_data:make_imagefolder_task"),
            description=(
                "your own images: --data DIR with train/CLASS/* (optional val/, test/), "
                "resized to image_size"
            ),
            defaults=OWN_DATA_DEFAULTS,
            kasmina=CNN_DEFAULTS,
        ),
        TaskSpec(
            name="arrays",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.own_data:make_arrays_task"),
            description=(
                "your own N×C×H×W images: --data FILE.npz/.pt with x_train, y_train "
                "(optional x_val/y_val, x_test/y_test) or x, y"
            ),
            defaults=OWN_DATA_DEFAULTS,
            kasmina=CNN_DEFAULTS,
        ),
    ]
