"""Programs to ``nn.Module`` s for an input shape, and compiled modules back to tokens.

Every layer is a standard torch module (``nn.Conv2d``, ``nn.Linear``, ``nn.GroupNorm`` ...), so
a compiled blueprint has the same parameters as the hand-written catalog block it spells, and
is TorchScript-scriptable. A layer remembers the width token it was built from
(``esper_width``) and whether it was zero-initialised (``esper_zero_init``): neither can be
read back from the weights, everything else :func:`decompile` reads from the structure.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from esper_core.discovery import tokens as T
from esper_core.discovery.grammar import (
    CheckedProgram,
    GrammarError,
    Group,
    Layer,
    Node,
    Op,
    Program,
    check,
    has_bias,
    layer_width,
    norm_groups,
    to_tokens,
)


class Residual(nn.Module):
    """``x + body(x)``."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Gate(nn.Module):
    """``x · 2σ(body(x))``; a per-channel body output is broadcast over the positions, so a
    zero-initialised last layer makes the gate exactly 1 (squeeze-and-excitation, Hu et al. 2018)."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.body(x)
        while g.dim() < x.dim():
            g = g.unsqueeze(-1)
        return x * (2.0 * torch.sigmoid(g))


class GlobalPool(nn.Module):
    """Mean over every position: ``(N, C, *spatial)`` → ``(N, C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 2).mean(-1)


class ChannelScale(nn.Module):
    """A learnable per-channel scale, zero at init (ReZero, Bachlechner et al. 2021)."""

    def __init__(self, channels: int, spatial_dims: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels, *([1] * spatial_dims)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class BlueprintModule(nn.Sequential):
    """A compiled blueprint; ``slot_width`` is the width it was built for."""

    def __init__(self, modules: Sequence[nn.Module], slot_width: int) -> None:
        super().__init__(*modules)
        self.slot_width = slot_width


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "RELU": nn.ReLU, "GELU": nn.GELU, "TANH": nn.Tanh, "SIGMOID": nn.Sigmoid, "SILU": nn.SiLU,
}
_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_POOL = {(T.POOL_AVG3, 1): nn.AvgPool1d, (T.POOL_AVG3, 2): nn.AvgPool2d,
         (T.POOL_MAX3, 1): nn.MaxPool1d, (T.POOL_MAX3, 2): nn.MaxPool2d}


def compile_program(program: CheckedProgram | Sequence[str],
                    input_shape: Sequence[int] | None = None) -> BlueprintModule:
    """Build the module of a checked program (or check ``tokens`` for ``input_shape`` first)."""
    if not isinstance(program, CheckedProgram):
        if input_shape is None:
            raise GrammarError("compiling tokens needs the input shape")
        program = check(program, input_shape)
    shape = program.input_shape
    modules, _ = _build(program.program.items, shape, shape[0])
    return BlueprintModule(modules or [nn.Identity()], slot_width=shape[0])


def _build(items: Sequence[Node], shape: tuple[int, ...], slot: int) -> tuple[list[nn.Module], tuple[int, ...]]:
    out: list[nn.Module] = []
    for index, node in enumerate(items):
        c, spatial = shape[0], shape[1:]
        if isinstance(node, Group):
            body, _ = _build(node.body, shape, slot)
            out.append((Residual if node.kind == T.RES_START else Gate)(nn.Sequential(*body)))
            continue
        if isinstance(node, Layer):
            width = layer_width(node, slot)
            bias = has_bias(items, index)
            layer: nn.Module
            if node.kind == T.LINEAR:
                layer = nn.Linear(c, width, bias=bias)
            else:
                assert node.kernel is not None
                layer = _CONV[len(spatial)](c, width, node.kernel, padding=node.dilation * (node.kernel // 2),
                                            dilation=node.dilation, groups=c if node.depthwise else 1, bias=bias)
            if node.zero_init:
                for p in layer.parameters():
                    nn.init.zeros_(p)
            layer.esper_width = node.width  # type: ignore[assignment]
            layer.esper_zero_init = node.zero_init  # type: ignore[assignment]
            layer.esper_depthwise = node.depthwise  # type: ignore[assignment]
            out.append(layer)
            shape = (width, *spatial)
        else:
            out.append(_op(node, c, spatial))
            if node.name == T.POOL_GLOBAL:
                shape = (c,)
    return out, shape


def _op(node: Op, c: int, spatial: tuple[int, ...]) -> nn.Module:
    if node.name == T.NORM:
        return nn.GroupNorm(norm_groups(c), c)
    if node.name == T.SCALE:
        return ChannelScale(c, len(spatial))
    if node.name == T.POOL_GLOBAL:
        return GlobalPool()
    if node.name in T.POOLS:
        return _POOL[(node.name, len(spatial))](3, stride=1, padding=1)
    return _ACTIVATIONS[node.name]()


# --------------------------------------------------------------------------------------------
# Module → tokens


def decompile(module: nn.Module) -> tuple[str, ...]:
    """The token form of a module compiled by :func:`compile_program`, read from its structure.

    A module with parts the grammar cannot express raises :class:`GrammarError` naming the part.
    """
    if not isinstance(module, BlueprintModule):
        raise GrammarError(f"{type(module).__name__} was not compiled from blueprint tokens")
    children = list(module)
    if len(children) == 1 and isinstance(children[0], nn.Identity):
        return (T.IDENTITY,)
    return to_tokens(Program(items=_read(children)))


def _read(children: Sequence[nn.Module]) -> tuple[Node, ...]:
    kernel_of = {v: k for k, v in T.KERNELS.items()}
    activation_of = {cls: name for name, cls in _ACTIVATIONS.items()}
    items: list[Node] = []
    for child in children:
        if isinstance(child, Residual | Gate):
            kind = T.RES_START if isinstance(child, Residual) else T.GATE_START
            items.append(Group(kind, _read(list(child.body))))
        elif isinstance(child, nn.Linear | nn.Conv1d | nn.Conv2d):
            width = getattr(child, "esper_width", None)
            if width not in T.WIDTHS:
                raise GrammarError(f"{type(child).__name__} carries no width token")
            if isinstance(child, nn.Linear):
                items.append(Layer(T.LINEAR, width, zero_init=bool(child.esper_zero_init)))
                continue
            k = child.kernel_size[0]
            if k not in kernel_of or len(set(child.kernel_size)) != 1:
                raise GrammarError(f"kernel {child.kernel_size} has no token")
            items.append(Layer(T.CONV, width, kernel=k, dilation=child.dilation[0],
                               depthwise=child.groups > 1 or bool(child.esper_depthwise),
                               zero_init=bool(child.esper_zero_init)))
        elif isinstance(child, nn.GroupNorm):
            items.append(Op(T.NORM))
        elif isinstance(child, ChannelScale):
            items.append(Op(T.SCALE))
        elif isinstance(child, GlobalPool):
            items.append(Op(T.POOL_GLOBAL))
        elif isinstance(child, nn.AvgPool1d | nn.AvgPool2d):
            items.append(Op(T.POOL_AVG3))
        elif isinstance(child, nn.MaxPool1d | nn.MaxPool2d):
            items.append(Op(T.POOL_MAX3))
        elif type(child) in activation_of:
            items.append(Op(activation_of[type(child)]))
        else:
            raise GrammarError(f"{type(child).__name__} has no token in the blueprint grammar")
    return tuple(items)
