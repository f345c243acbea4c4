"""Parsing and validating blueprint token sequences into a typed program (torch-free).

Grammar (``item*`` is the body of a blueprint or group)::

    program := IDENTITY | item+
    item    := layer | NORM | SCALE | activation | pool | group
    layer   := LINEAR width [ZERO_INIT]
             | CONV kernel [DILATE_2] [DEPTHWISE] width [ZERO_INIT]
    group   := RES_START item+ RES_END          (x + body(x))
             | GATE_START item+ GATE_END        (x · 2σ(body(x)), body gives x's shape or (C,))

A layer has a bias unless a NORM follows it directly (the norm's shift makes a bias redundant),
which is also how the hand-written catalog blueprints are built. :func:`check` parses and then
walks the program over an input shape ``(C, *spatial)``, so every failure names the token and
the reason (a kernel on a LINEAR, a LINEAR on spatial features, a residual group that changes
the shape ...). The walk also counts parameters exactly, so a library blueprint can be priced
without torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import field, frozen

from esper_core.discovery import tokens as T
from esper_core.errors import EsperError

#: Longest sequence the grammar accepts (generators sample at most this many tokens).
MAX_TOKENS = 32


class GrammarError(EsperError):
    """A token sequence is not a valid blueprint; ``reason`` says why, ``position`` where."""

    def __init__(self, reason: str, position: int | None = None) -> None:
        self.reason = reason
        self.position = position
        super().__init__(reason if position is None else f"token {position}: {reason}")


@frozen
class Layer:
    kind: str  # LINEAR or CONV
    width: str  # a width token
    kernel: int | None = None
    dilation: int = 1
    depthwise: bool = False
    zero_init: bool = False
    at: int = field(default=0, eq=False)


@frozen
class Op:
    """A parameter-free or shape-keeping primitive: NORM, SCALE, an activation or a pool."""

    name: str
    at: int = field(default=0, eq=False)


@frozen
class Group:
    kind: str  # RES_START or GATE_START
    body: tuple[Layer | Op | Group, ...]
    at: int = field(default=0, eq=False)


Node = Layer | Op | Group


@frozen
class Program:
    """A parsed blueprint; ``identity`` for the IDENTITY program (no items)."""

    items: tuple[Node, ...]

    @property
    def identity(self) -> bool:
        return not self.items


def norm_groups(channels: int) -> int:
    """GroupNorm groups for ``channels``: the largest of 8, 4, 2, 1 that divides it (the rule
    of the CNN catalog, so a grammar NORM matches a catalog norm)."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


# --------------------------------------------------------------------------------------------
# Parsing


def parse(tokens: Sequence[str]) -> Program:
    """Parse ``tokens`` into a :class:`Program` or raise :class:`GrammarError`."""
    seq = list(tokens)
    if not seq:
        raise GrammarError("empty sequence; the identity blueprint is written IDENTITY")
    if len(seq) > MAX_TOKENS:
        raise GrammarError(f"{len(seq)} tokens; at most {MAX_TOKENS} are allowed")
    known = set(T.VOCABULARY)
    for i, tok in enumerate(seq):
        if tok not in known:
            raise GrammarError(f"unknown token {tok!r}", i)
    if T.IDENTITY in seq:
        if len(seq) > 1:
            raise GrammarError("IDENTITY must be the whole blueprint, alone", seq.index(T.IDENTITY))
        return Program(items=())
    items, _ = _parse_items(seq, 0, closer=None)
    return Program(items=items)


def _parse_items(seq: list[str], i: int, closer: str | None) -> tuple[tuple[Node, ...], int]:
    items: list[Node] = []
    while i < len(seq):
        tok = seq[i]
        if tok in T.GROUP_CLOSE:
            if tok != closer:
                expected = f"{closer} first" if closer else "no open group"
                raise GrammarError(f"{tok} closes nothing here ({expected})", i)
            return tuple(items), i + 1
        if tok in T.GROUP_OPEN:
            body, j = _parse_items(seq, i + 1, closer=T.GROUP_OPEN[tok])
            if not body:
                raise GrammarError(f"empty {tok} … {T.GROUP_OPEN[tok]} group", i)
            items.append(Group(tok, body, at=i))
            i = j
        elif tok in T.LAYERS:
            layer, i = _parse_layer(seq, i)
            items.append(layer)
        elif tok in T.ACTIVATIONS or tok in T.POOLS or tok in (T.NORM, T.SCALE):
            items.append(Op(tok, at=i))
            i += 1
        elif tok in T.KERNELS:
            raise GrammarError(f"{tok} must follow CONV", i)
        elif tok in T.WIDTHS:
            raise GrammarError(f"width {tok} must follow LINEAR or CONV", i)
        else:
            raise GrammarError(f"{tok} must follow a layer (LINEAR or CONV)", i)
    if closer is not None:
        raise GrammarError(f"group not closed: expected {closer} before the end")
    return tuple(items), i


def _parse_layer(seq: list[str], i: int) -> tuple[Layer, int]:
    kind, start = seq[i], i
    i += 1

    def peek() -> str | None:
        return seq[i] if i < len(seq) else None

    kernel, dilation, depthwise = None, 1, False
    if kind == T.CONV:
        if peek() not in T.KERNELS:
            raise GrammarError(f"CONV needs a kernel token (KERNEL_1/3/5/7) next, got {peek() or 'the end'}", i)
        kernel = T.KERNELS[seq[i]]
        i += 1
        if peek() == T.DILATE_2:
            if kernel == 1:
                raise GrammarError("DILATE_2 on a 1×1 kernel changes nothing", i)
            dilation, i = 2, i + 1
        if peek() == T.DEPTHWISE:
            depthwise, i = True, i + 1
    else:
        nxt = peek()
        if nxt in T.KERNELS:
            raise GrammarError(f"{nxt}: a kernel size applies to CONV, not LINEAR", i)
        if nxt in (T.DILATE_2, T.DEPTHWISE):
            raise GrammarError(f"{nxt} applies to CONV, not LINEAR", i)
    nxt = peek()
    if nxt not in T.WIDTHS:
        if nxt in (T.DILATE_2, T.DEPTHWISE):
            raise GrammarError(f"{nxt} out of order: write CONV KERNEL_k [DILATE_2] [DEPTHWISE] width", i)
        raise GrammarError(f"{kind} needs a width token ({', '.join(T.WIDTHS)}) next, got {nxt or 'the end'}", i)
    width = seq[i]
    i += 1
    zero = peek() == T.ZERO_INIT
    if zero:
        i += 1
    return Layer(kind, width, kernel=kernel, dilation=dilation, depthwise=depthwise, zero_init=zero, at=start), i


def to_tokens(program: Program) -> tuple[str, ...]:
    """The canonical token form of ``program`` (``parse(to_tokens(p)) == p``)."""
    if program.identity:
        return (T.IDENTITY,)
    out: list[str] = []
    _emit(program.items, out)
    return tuple(out)


def _emit(items: Sequence[Node], out: list[str]) -> None:
    kernel_token = {v: k for k, v in T.KERNELS.items()}
    for node in items:
        if isinstance(node, Group):
            out.append(node.kind)
            _emit(node.body, out)
            out.append(T.GROUP_OPEN[node.kind])
        elif isinstance(node, Layer):
            out.append(node.kind)
            if node.kernel is not None:
                out.append(kernel_token[node.kernel])
            if node.dilation == 2:
                out.append(T.DILATE_2)
            if node.depthwise:
                out.append(T.DEPTHWISE)
            out.append(node.width)
            if node.zero_init:
                out.append(T.ZERO_INIT)
        else:
            out.append(node.name)


# --------------------------------------------------------------------------------------------
# Shape checking


Shape = tuple[int, ...]


@frozen
class CheckedProgram:
    """A program that is valid for ``input_shape`` (``(C, *spatial)``), with its exact size."""

    program: Program
    input_shape: Shape
    params: int

    @property
    def width(self) -> int:
        return self.input_shape[0]

    @property
    def tokens(self) -> tuple[str, ...]:
        return to_tokens(self.program)


def has_bias(items: Sequence[Node], index: int) -> bool:
    """Whether layer ``items[index]`` carries a bias: not when a NORM follows it directly."""
    nxt = items[index + 1] if index + 1 < len(items) else None
    return not (isinstance(nxt, Op) and nxt.name == T.NORM)


def layer_width(layer: Layer, slot_width: int) -> int:
    return T.WIDTHS[layer.width](slot_width)


def check(tokens: Sequence[str] | Program, input_shape: Sequence[int]) -> CheckedProgram:
    """Parse (unless given a Program) and validate for ``input_shape`` = ``(C, *spatial)``.

    The blueprint must map that shape to itself (a seed replaces nothing in its slot's shape).
    """
    program = tokens if isinstance(tokens, Program) else parse(tokens)
    shape = tuple(int(s) for s in input_shape)
    if not 1 <= len(shape) <= 3 or any(s < 1 for s in shape):
        raise GrammarError(f"input shape {shape} must be (C,), (C, L) or (C, H, W) with sizes ≥ 1")
    out, params = _walk(program.items, shape, shape[0])
    if out != shape:
        raise GrammarError(f"the blueprint maps {shape} to {out}; a seed must keep its slot's shape")
    return CheckedProgram(program=program, input_shape=shape, params=params)


def _walk(items: Sequence[Node], shape: Shape, slot: int) -> tuple[Shape, int]:
    params = 0
    for index, node in enumerate(items):
        c, spatial = shape[0], shape[1:]
        if isinstance(node, Group):
            out, p = _walk(node.body, shape, slot)
            params += p
            if node.kind == T.RES_START and out != shape:
                raise GrammarError(f"residual group maps {shape} to {out}; its body must keep the shape",
                                   node.at)
            if node.kind == T.GATE_START and out not in (shape, (c,)):
                raise GrammarError(f"gate group gives {out}; it must give the input shape {shape} or "
                                   f"one value per channel ({c},)", node.at)
        elif isinstance(node, Layer):
            out_c = layer_width(node, slot)
            bias = out_c if has_bias(items, index) else 0
            if node.kind == T.LINEAR:
                if spatial:
                    raise GrammarError(f"LINEAR needs vector features (C,), got spatial {shape}: pool "
                                       "first (POOL_GLOBAL) or use CONV KERNEL_1", node.at)
                params += c * out_c + bias
            else:
                if not spatial:
                    raise GrammarError(f"CONV needs spatial input (C, L) or (C, H, W), got vector {shape}",
                                       node.at)
                assert node.kernel is not None
                if node.depthwise and out_c != c:
                    raise GrammarError(f"DEPTHWISE needs its output width equal to its input width "
                                       f"({c} → {out_c}); use OUT_IN where the input is the slot width",
                                       node.at)
                taps = node.kernel ** len(spatial)
                params += (taps * c if node.depthwise else taps * c * out_c) + bias
            shape = (out_c, *spatial)
        else:
            if node.name == T.NORM:
                params += 2 * c
            elif node.name == T.SCALE:
                params += c
            elif node.name in T.POOLS:
                if not spatial:
                    raise GrammarError(f"{node.name} needs spatial input, got vector {shape}", node.at)
                if node.name == T.POOL_GLOBAL:
                    shape = (c,)
    return shape, params


def identity_at_init(program: Program) -> bool:
    """True when the module built from ``program`` is exactly the identity at initialisation:
    every top-level item is a residual whose body ends in SCALE or a ZERO_INIT layer, or a gate
    whose body ends in a ZERO_INIT layer (2σ(0) = 1)."""
    if program.identity:
        return True
    for node in program.items:
        if not isinstance(node, Group):
            return False
        last = node.body[-1]
        zero = isinstance(last, Layer) and last.zero_init
        if node.kind == T.RES_START and not (zero or (isinstance(last, Op) and last.name == T.SCALE)):
            return False
        if node.kind == T.GATE_START and not zero:
            return False
    return True


def structure_key(tokens: Sequence[str]) -> str:
    """A hashable key: candidates with equal keys have the same structure and train together."""
    return " ".join(tokens)
