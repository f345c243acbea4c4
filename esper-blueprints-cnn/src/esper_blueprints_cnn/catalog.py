"""The CNN blueprint catalog and task specs, built without importing torch.

Blueprints are declared with :mod:`esper_core.blueprint_catalog`: factories are ``module:attr``
paths into :mod:`esper_blueprints_cnn.blueprints` (torch is imported only when a module is built);
parameter estimates are the pure-Python functions of :mod:`esper_blueprints_cnn.estimates`.
"""

from __future__ import annotations

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
from esper_core.sdk import BlueprintEntry, declare_blueprints

#: Own data gets the CIFAR-10 recipe (AdamW, 30 epochs): the general-purpose image recipe here,
#: where ``shapes``' is tuned to one tiny procedural dataset.
OWN_DATA_DEFAULTS = CIFAR10_DEFAULTS

TOPOLOGY = "cnn"
_PKG = "esper_blueprints_cnn"


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


#: Catalog indices 0–7 and 13–23 (DESIGN §8). Every one of them starts at identity; ``family``
#: names the module of :mod:`esper_blueprints_cnn.blueprints` that builds it.
BLUEPRINTS: tuple[BlueprintEntry, ...] = (
    BlueprintEntry(index=0, name="noop", factory="basic:noop", estimate=estimates.noop,
                   description="identity: the control seed, no parameters",
                   tokens=TOKENS["noop"], metadata={"family": "basic"}, identity_at_init=True),
    BlueprintEntry(index=1, name="conv_light", factory="basic:conv_light", estimate=estimates.conv_light,
                   description="residual 3×3 conv + GroupNorm + ReLU, zero-init scale",
                   paper="He et al. 2016, Deep Residual Learning for Image Recognition",
                   tokens=TOKENS["conv_light"], metadata={"family": "basic"}, identity_at_init=True),
    BlueprintEntry(index=2, name="attention", factory="attention:attention", estimate=estimates.attention,
                   description="squeeze-and-excitation channel gate, zero-init excitation",
                   paper="Hu et al. 2018, Squeeze-and-Excitation Networks",
                   tokens=TOKENS["attention"], metadata={"family": "attention"}, identity_at_init=True),
    BlueprintEntry(index=3, name="norm", factory="basic:norm", estimate=estimates.norm,
                   description="learnable-scaled GroupNorm residual",
                   paper="Wu & He 2018, Group Normalization",
                   tokens=TOKENS["norm"], metadata={"family": "basic"}, identity_at_init=True),
    BlueprintEntry(index=4, name="depthwise", factory="efficient:depthwise", estimate=estimates.depthwise,
                   description="depthwise 3×3 + pointwise 1×1 (zero-init), residual",
                   paper="Howard et al. 2017, MobileNets",
                   tokens=TOKENS["depthwise"], metadata={"family": "efficient"}, identity_at_init=True),
    BlueprintEntry(index=5, name="bottleneck", factory="efficient:bottleneck", estimate=estimates.bottleneck,
                   description="1×1 down ×4, 3×3, 1×1 up (zero-init), residual",
                   paper="He et al. 2016, Deep Residual Learning for Image Recognition",
                   tokens=TOKENS["bottleneck"], metadata={"family": "efficient"}, identity_at_init=True),
    BlueprintEntry(index=6, name="conv_small", factory="basic:conv_small", estimate=estimates.conv_small,
                   description="zero-init 1×1 conv residual",
                   tokens=TOKENS["conv_small"], metadata={"family": "basic"}, identity_at_init=True),
    BlueprintEntry(index=7, name="conv_heavy", factory="basic:conv_heavy", estimate=estimates.conv_heavy,
                   description="two conv_light blocks in sequence",
                   paper="He et al. 2016, Deep Residual Learning for Image Recognition",
                   tokens=TOKENS["conv_heavy"], metadata={"family": "basic"}, identity_at_init=True),
    BlueprintEntry(index=13, name="dilated", factory="basic:dilated", estimate=estimates.dilated,
                   description="conv_light with dilation 2 (5×5 receptive field)",
                   paper="Yu & Koltun 2016, Multi-Scale Context Aggregation by Dilated Convolutions",
                   tokens=TOKENS["dilated"], metadata={"family": "basic"}, identity_at_init=True),
    BlueprintEntry(index=14, name="asymmetric", factory="convs:asymmetric", estimate=estimates.asymmetric,
                   description="factorised 3×1 + 1×3 conv residual",
                   paper="Szegedy et al. 2016, Rethinking the Inception Architecture",
                   metadata={"family": "convs"}, identity_at_init=True),
    BlueprintEntry(index=15, name="coord", factory="convs:coord", estimate=estimates.coord,
                   description="3×3 conv over features + coordinate channels, residual",
                   paper="Liu et al. 2018, An Intriguing Failing of CNNs and the CoordConv Solution",
                   metadata={"family": "convs"}, identity_at_init=True),
    BlueprintEntry(index=16, name="gated", factory="convs:gated", estimate=estimates.gated,
                   description="gated 3×3 conv a·σ(b), residual",
                   paper="Dauphin et al. 2017, Language Modeling with Gated Convolutional Networks",
                   metadata={"family": "convs"}, identity_at_init=True),
    BlueprintEntry(index=17, name="eca", factory="attention:eca", estimate=estimates.eca,
                   description="efficient channel attention: 1-D conv over pooled channels",
                   paper="Wang et al. 2020, ECA-Net",
                   metadata={"family": "attention"}, identity_at_init=True),
    BlueprintEntry(index=18, name="spatial_attention", factory="attention:spatial_attention",
                   estimate=estimates.spatial_attention,
                   description="CBAM spatial gate from channel mean and max",
                   paper="Woo et al. 2018, CBAM: Convolutional Block Attention Module",
                   metadata={"family": "attention"}, identity_at_init=True),
    BlueprintEntry(index=19, name="shift", factory="efficient:shift", estimate=estimates.shift,
                   description="zero-parameter spatial shift + 1×1 conv residual",
                   paper="Wu et al. 2018, Shift: A Zero FLOP, Zero Parameter Alternative to Spatial Convolutions",
                   metadata={"family": "efficient"}, identity_at_init=True),
    BlueprintEntry(index=20, name="shuffle", factory="efficient:shuffle", estimate=estimates.shuffle,
                   description="grouped 1×1, channel shuffle, depthwise 3×3, residual",
                   paper="Zhang et al. 2018, ShuffleNet",
                   metadata={"family": "efficient"}, identity_at_init=True),
    BlueprintEntry(index=21, name="reparam", factory="convs:reparam", estimate=estimates.reparam,
                   description="parallel 3×3 + 1×1 convs, foldable into one 3×3, residual",
                   paper="Ding et al. 2021, RepVGG: Making VGG-style ConvNets Great Again",
                   metadata={"family": "convs"}, identity_at_init=True),
    BlueprintEntry(index=22, name="mixdw", factory="efficient:mixdw", estimate=estimates.mixdw,
                   description="mixed 3/5/7 depthwise kernels + pointwise, residual",
                   paper="Tan & Le 2019, MixConv: Mixed Depthwise Convolutional Kernels",
                   metadata={"family": "efficient"}, identity_at_init=True),
    BlueprintEntry(index=23, name="laplacian", factory="convs:laplacian", estimate=estimates.laplacian,
                   description="fixed Laplacian edge filter + learned 1×1 projection, residual",
                   metadata={"family": "convs"}, identity_at_init=True),
)


def blueprint_specs() -> list[BlueprintSpec]:
    return declare_blueprints(topology=TOPOLOGY, factories=f"{_PKG}.blueprints", entries=BLUEPRINTS)


#: The widest block of the shapes host (``esper blueprints`` prices blueprints at it).
SHAPES_SLOT_WIDTH = max(SHAPES_WIDTHS)


def task_specs() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="shapes",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.procedural:make_shapes_task"),
            read_options=lazy(f"{_PKG}.tasks.procedural:read_shapes_options"),
            description="procedural 32×32 shapes × textures, 10 classes (embedded, no download)",
            defaults=SHAPES_DEFAULTS,
            kasmina=CNN_DEFAULTS,
            slot_width=SHAPES_SLOT_WIDTH,
            is_default=True,
        ),
        TaskSpec(
            name="micro",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.procedural:make_micro_task"),
            read_options=lazy(f"{_PKG}.tasks.procedural:read_micro_options"),
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
            read_options=lazy(f"{_PKG}.tasks.cifar:read_cifar10_options"),
            description="CIFAR-10 via torchvision (download only with the download option)",
            defaults=CIFAR10_DEFAULTS,
            kasmina=CNN_DEFAULTS,
        ),
        TaskSpec(
            name="cifar100",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.cifar:make_cifar100_task"),
            read_options=lazy(f"{_PKG}.tasks.cifar:read_cifar100_options"),
            description="CIFAR-100 (fine labels) via torchvision (download only when asked)",
            defaults=CIFAR100_DEFAULTS,
            kasmina=CNN_DEFAULTS,
        ),
        TaskSpec(
            name="imagefolder",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.own_data:make_imagefolder_task"),
            read_options=lazy(f"{_PKG}.tasks.own_data:read_imagefolder_options"),
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
            read_options=lazy(f"{_PKG}.tasks.own_data:read_arrays_options"),
            description=(
                "your own N×C×H×W images: --data FILE.npz/.pt with x_train, y_train "
                "(optional x_val/y_val, x_test/y_test) or x, y"
            ),
            defaults=OWN_DATA_DEFAULTS,
            kasmina=CNN_DEFAULTS,
        ),
    ]
