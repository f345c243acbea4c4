"""Training many candidates as one computation (stacked parameters), across structures.

The M models of a group are stacked with :func:`torch.func.stack_module_state` and run by a
small interpreter over the module types the grammar and the scaffolds use. Activations are laid
out ``(N, M, C, *spatial)``, so a convolution or GroupNorm over all M models is one call on the
``(N, M·C, *spatial)`` view with ``groups × M`` (models never mix), and a linear layer is one
batched matmul. The summed loss gives every model exactly its own gradient, and Adam is
elementwise, so one ``torch.optim.Adam`` over the stacked tensors is M independent optimisers:
:func:`train_batched` matches :func:`train_single` on each model up to float rounding.

Different structures (:func:`train_mixed`) share one training loop: stem, head, loss, backward
and the Adam step run once for all M models, and each structure's blueprint runs on its
contiguous slice of the model axis (one ``split``, one ``cat``). How this was chosen, measured
on random search's first 256 candidates (seed 0: 118 valid, 96 distinct structures), one
thread, 2 shared cores:

* bucketing by a shape signature and padding/masking would still leave many loops: abstracting
  kernels, dilation, depthwise and the activation/pool kind leaves 74 buckets for the 96
  structures; merging every shape-keeping op 58; also every layer that keeps the width 34;
* one shared loop per task, 10 Adam steps: xor 1.34 s → 0.67 s, temporal 2.4–2.8 s → 1.7 s,
  image 3.6–3.8 s → 2.4 s against one structure per loop; in one 118-model batch temporal and
  image ran slower (1.8 s, 2.7–3.0 s): past a few MB of activations the batch leaves the CPU
  caches (the Crucible's ``chunk_elements`` cuts the batch into cache-sized parts);
* what is left is mostly real work: in the mixed temporal and image runs, convolution forward
  and backward take over half of the time (random programs carry 5×5/7×7, dilated and 4×-wide
  convolutions). On a unit axis (xor's 1×1, temporal's 1×16) only a kernel's centre row meets
  data, so the interpreter drops the other rows: a 5×5 convolution with its backward on a 1×16
  strip, 128 samples, 8 channels, 0.73 ms → 0.39 ms (7×7 dilated: 1.08 → 0.54 ms); an
  im2col (``unfold`` + einsum) convolution was 2–15× slower than the grouped one.

``benchmarks/bench_crucible.py`` (256 candidates, xor+temporal+image, 100 steps, one thread,
median of 3; back-to-back runs at load average 1.2–2.7 on 2 shared cores): random search
6.0 → 8.9 candidates/s, 256 copies of ``RELU`` 13.3 → 39.8 (cache-sized parts and the 1×1
matmul help one structure far more), so random / one structure went 0.45 → 0.20, short of
the 0.5 goal. The limit is the work itself: ``RELU`` has no convolution, while convolutions
(5×5/7×7, dilated, 4× wide) are about half of the random run, more than the whole
one-structure run; the rest is per-structure interpreter overhead (one call per op per
structure, ≈ 96 structures per 256 candidates).

Batching across structures (issue 28): the structures of a batch run in lockstep
(:func:`_plan`, :func:`_lockstep`). Each blueprint is flattened to straight-line instructions;
a convolution, linear layer or max pool whose key (module hyperparameters and input shape)
other structures share runs once for all of them, on their concatenated models and weights.
Profiled first (torch.profiler, 20 steps, random search's candidates): convolution forward and
backward were 44% of the image task (a quarter of temporal, profiled with grouping in place),
the 3×3 pools 16% of image, the rest many small calls. What was kept, measured one thread on
2 shared cores at load average 6:

* grouping same-key convolutions: 8 structures' 8→8 convolutions on 64 samples of 8×8 run
  1.3–2.3× faster per model as one call (3×3 … 7×7, dilated least), 4 structures' on
  temporal's 1×16 strips 2.4–2.9× (a lone small convolution is mostly call overhead); in the
  Crucible's cache-sized parts most keys are shared by 1–6 structures, so convolution time
  fell by less (image: 770 → 460 convolution calls per 10 steps);
* max pool through the channels-last kernel (the same values and argmax, ties included)
  0.87 → 0.32 ms with its backward; average pool as shifted sums 0.61 → 0.34 ms;
* on XOR's 1×1 slot a narrowed depthwise or dilated convolution is a scale or a matmul, not a
  convolution call.

Tried and dropped: grouping every instruction where the activations are tiny (XOR's 1×1
slot) saved 1–16% of XOR's time in three rounds, not worth more keys; one part for the whole
batch (more structures per key) ran the image task no faster (5.2–5.8 s either way, 20 steps:
10% less convolution time, more time in the whole-batch stem, head and ``cat`` out of the
caches) and temporal 3–9% faster, so the Crucible's cache-sized parts stay. Before/after in
one process (bench_crucible's search workload, 3 alternating rounds, load average 5.2–6.1):
random search 5.9 → 7.1 candidates/s, 256 × ``RELU`` 27.8 → 27.5 (that path is unchanged),
random / one structure 0.21 → 0.26. The goal of 0.5 is out of reach this way: the image
task's convolutions (5×5/7×7 at 8→8 channels on 64 samples of 8×8: 1.3 GMAC per step with
the backward) run at 25–60 GFLOP/s in mkldnn and took 1.1 s of 2.7 s for 10 steps, so about
11 s for 100 steps, more than the whole one-structure run (256 / 27.5 per s = 9.3 s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from attrs import frozen
from torch import Tensor, nn

from esper_core.discovery.compile import ChannelScale, Gate, GlobalPool, Residual
from esper_core.kasmina.optimizers import adam

#: A model's loss above this (or non-finite) counts as an explosion.
EXPLOSION_LOSS = 1e4
#: Linear layers with at most this many multiply-adds per model run as multiply-and-sum.
_SMALL_MATMUL = 4096

_ELEMENTWISE = (nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.Identity)
_POOLS: dict[type[nn.Module], Callable[..., Tensor]] = {
    nn.AvgPool1d: F.avg_pool1d, nn.AvgPool2d: F.avg_pool2d, nn.MaxPool1d: F.max_pool1d, nn.MaxPool2d: F.max_pool2d}


class ToSpatial(nn.Module):
    """``(N, C)`` → ``(N, C, 1, …, 1)`` with ``dims`` unit axes: lets a vector task (a crucible
    task's stem) feed a slot with spatial axes."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return x[(..., *([None] * self.dims))]


class Scaffold(nn.Module):
    """The standard network a candidate is inserted into: ``head(blueprint(stem(x)))``."""

    def __init__(self, stem: nn.Module, blueprint: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.blueprint = blueprint
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blueprint(self.stem(x)))


@frozen
class TrainData:
    """Full-batch training and evaluation tensors shared by every candidate of a task."""

    x_train: Tensor
    y_train: Tensor
    x_eval: Tensor
    y_eval: Tensor
    x_probe: Tensor


@frozen
class TrainResult:
    """Per-model outcomes, each a tensor with a leading model axis of size M."""

    losses: Tensor  # (steps, M) training loss before each step
    accuracy: Tensor  # (M,) evaluation accuracy in [0, 1]
    stable: Tensor  # (M,) bool: every loss finite and below EXPLOSION_LOSS, parameters finite
    probe: Tensor  # (M, P, D) blueprint outputs on the probe inputs, flattened per input


# --------------------------------------------------------------------------------------------
# The batched interpreter


def _forward(module: nn.Module, params: Mapping[str, Tensor], prefix: str, x: Tensor, m: int) -> Tensor:
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            x = _forward(child, params, f"{prefix}{name}.", x, m)
        return x
    if isinstance(module, Scaffold):
        stem = _forward(module.stem, params, f"{prefix}stem.", x, m)
        return _forward(module.head, params, f"{prefix}head.",
                        _forward(module.blueprint, params, f"{prefix}blueprint.", stem, m), m)
    if isinstance(module, Residual):
        return x + _forward(module.body, params, f"{prefix}body.", x, m)
    if isinstance(module, Gate):
        g = _forward(module.body, params, f"{prefix}body.", x, m)
        while g.dim() < x.dim():
            g = g.unsqueeze(-1)
        return x * (2.0 * torch.sigmoid(g))
    if isinstance(module, nn.Linear):
        w = params[f"{prefix}weight"]  # (M, out, in)
        if x.shape[0] * w.shape[1] * w.shape[2] <= _SMALL_MATMUL:
            # Tiny per-model products (XOR): a broadcast multiply-and-sum beats bmm's per-matrix cost.
            y = (x.unsqueeze(-2) * w).sum(-1)
        else:
            y = torch.einsum("nmi,moi->nmo", x, w)
        bias = params.get(f"{prefix}bias")
        return y if bias is None else y + bias
    n = x.shape[0]
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        w = params[f"{prefix}weight"]
        bias = params.get(f"{prefix}bias")
        padding: str | tuple[int, ...] = module.padding
        if not isinstance(padding, str):
            pads = list(padding)
            for axis, size in enumerate(x.shape[3:]):
                k = w.shape[3 + axis]
                if size == 1 and k > 1 and pads[axis] == module.dilation[axis] * (k // 2):
                    # Along a unit axis ("same" padding) only the centre tap meets data; the other
                    # taps multiply padding zeros and get zero gradient, so dropping them changes
                    # nothing but the cost (a 1×16 strip with a 7×7 kernel: 7× fewer products).
                    w = w.narrow(3 + axis, k // 2, 1)
                    pads[axis] = 0
            padding = tuple(pads)
        # A dilation along an axis where the kernel has one tap changes nothing.
        dilation = tuple(1 if w.shape[3 + axis] == 1 else d for axis, d in enumerate(module.dilation))
        if all(k == 1 for k in w.shape[3:]) and padding == (0,) * (w.dim() - 3):
            if module.groups == 1:
                return _pointwise(x, w, bias)
            if module.groups == module.in_channels == module.out_channels:
                # A 1×1 depthwise convolution (every XOR one, once narrowed) is a per-channel
                # scale: the same single product per output, without a convolution call.
                y = x * w.reshape(1, m, -1, *([1] * (x.dim() - 3)))
                return y if bias is None else y + bias.reshape(1, m, -1, *([1] * (x.dim() - 3)))
        conv = F.conv1d if isinstance(module, nn.Conv1d) else F.conv2d
        flat = x.reshape(n, -1, *x.shape[3:])
        y = conv(flat, w.reshape(-1, *w.shape[2:]), None if bias is None else bias.reshape(-1),
                 padding=padding, dilation=dilation, groups=module.groups * m)
        return y.reshape(n, m, -1, *y.shape[2:])
    if isinstance(module, nn.GroupNorm):
        flat = x.reshape(n, -1, *x.shape[3:])
        y = F.group_norm(flat, module.num_groups * m, params[f"{prefix}weight"].reshape(-1),
                         params[f"{prefix}bias"].reshape(-1), module.eps)
        return y.reshape(x.shape)
    if isinstance(module, ChannelScale):
        return x * params[f"{prefix}weight"]
    if isinstance(module, GlobalPool):
        if x[0, 0, 0].numel() == 1:  # a 1×1 slot (XOR): pooling is a reshape
            return x.reshape(x.shape[:3])
        return torch.flatten(x, 3).mean(-1)
    if isinstance(module, ToSpatial):
        return module(x)
    if isinstance(module, nn.MaxPool2d):
        # The channels-last kernel: the same maxima and the same argmax on ties (checked bit for
        # bit in the tests), 2.7× faster with its backward on 64 samples × 8 channels × 8×8.
        flat = x.reshape(n, -1, *x.shape[3:]).contiguous(memory_format=torch.channels_last)
        return F.max_pool2d(flat, 3, stride=1, padding=1).contiguous().reshape(x.shape)
    if isinstance(module, nn.AvgPool2d):
        return _avg_pool3(x)
    if type(module) in _POOLS:
        flat = x.reshape(n, -1, *x.shape[3:])
        y = _POOLS[type(module)](flat, 3, stride=1, padding=1)
        return y.reshape(x.shape)
    if isinstance(module, _ELEMENTWISE):
        return module(x)
    raise TypeError(f"the batched trainer cannot run {type(module).__name__}")


# --------------------------------------------------------------------------------------------
# Several structures in lockstep

#: A blueprint as straight-line code: ``("op", module, prefix)`` runs a module, ``("open", None,
#: "")`` saves the activation at a group's start, ``("res", None, "")`` / ``("gate", None, "")``
#: close the group.
_Instruction = tuple[str, nn.Module | None, str]


def _program(module: nn.Module, prefix: str) -> list[_Instruction]:
    if isinstance(module, nn.Sequential):
        return [ins for name, child in module.named_children() for ins in _program(child, f"{prefix}{name}.")]
    if isinstance(module, Residual | Gate):
        close = "res" if isinstance(module, Residual) else "gate"
        return [("open", None, ""), *_program(module.body, f"{prefix}body."), (close, None, "")]
    return [("op", module, prefix)]


_Shape = tuple[int, ...] | None
#: Modules that keep their input's shape (the 3×3 pools have stride 1 and padding 1).
_SHAPE_KEEPING = (*_ELEMENTWISE, nn.GroupNorm, ChannelScale, *_POOLS)


def _shapes(code: Sequence[_Instruction], shape: _Shape) -> list[_Shape]:
    """The input shape ``(C, *spatial)`` of each instruction; None after a module of unknown effect."""
    out: list[_Shape] = []
    saved: list[_Shape] = []
    for ins in code:
        out.append(shape)
        if ins[0] == "open":
            saved.append(shape)
        elif ins[1] is None:
            shape = saved.pop()
        elif shape is not None:
            module = ins[1]
            if isinstance(module, nn.Conv1d | nn.Conv2d):
                shape = (module.out_channels, *shape[1:])
            elif isinstance(module, nn.Linear):
                shape = (module.out_features, *shape[1:])
            elif isinstance(module, GlobalPool):
                shape = shape[:1]
            elif not isinstance(module, _SHAPE_KEEPING):
                shape = None
    return out


def _key(module: nn.Module | None, shape: _Shape) -> tuple[object, ...] | None:
    """Instructions with equal keys (not None) run as one call on their concatenated models."""
    if module is None or shape is None:
        return None
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        return (type(module), module.in_channels, module.out_channels, module.kernel_size, module.dilation,
                module.padding, module.groups, module.bias is not None, shape)
    if isinstance(module, nn.Linear):
        return (nn.Linear, module.in_features, module.out_features, module.bias is not None, shape)
    if isinstance(module, nn.MaxPool2d):
        return (nn.MaxPool2d, shape)
    return None


def _plan(codes: Sequence[Sequence[_Instruction]], shape: tuple[int, ...]) -> list[list[int]]:
    """The order in which the structures' instructions run: each entry lists the structures
    whose next instruction runs as one call.

    Each structure runs its own instructions in its own order; only the interleaving across
    structures is chosen. Instructions without a key run as soon as they are reached; a
    structure at a keyed one (convolution, linear layer, max pool) waits. Of the keys waited
    at, the one with the largest share of its remaining uses ready runs first (a key no other
    structure will reach runs at once), so rarer keys run early and their structures go on to
    join the groups of the common ones.
    """
    keys = [[_key(ins[1], sh) for ins, sh in zip(code, _shapes(code, shape), strict=True)] for code in codes]
    pcs = [0] * len(codes)
    plan: list[list[int]] = []
    waiting: dict[tuple[object, ...], list[int]] = {}

    def advance(t: int) -> None:
        while pcs[t] < len(keys[t]) and keys[t][pcs[t]] is None:
            plan.append([t])
            pcs[t] += 1
        key = keys[t][pcs[t]] if pcs[t] < len(keys[t]) else None
        if key is not None:
            waiting.setdefault(key, []).append(t)

    for t in range(len(codes)):
        advance(t)
    while waiting:
        later: dict[tuple[object, ...], int] = {}
        for t, code_keys in enumerate(keys):
            for k in code_keys[pcs[t] + 1:]:
                if k is not None:
                    later[k] = later.get(k, 0) + 1
        best = max(waiting, key=lambda k: (len(waiting[k]) / (len(waiting[k]) + later.get(k, 0)), len(waiting[k])))
        group = waiting.pop(best)
        plan.append(group)
        for t in group:
            pcs[t] += 1
            advance(t)
    return plan


class _Thread:
    """One structure's models running their program: activation, position, saved activations."""

    __slots__ = ("code", "k", "params", "pc", "saved", "x")

    def __init__(self, code: list[_Instruction], params: Mapping[str, Tensor], k: int, x: Tensor) -> None:
        self.code, self.params, self.k, self.x = code, params, k, x
        self.pc = 0
        self.saved: list[Tensor] = []

    def step(self) -> None:
        kind, module, prefix = self.code[self.pc]
        if module is not None:
            self.x = _forward(module, self.params, prefix, self.x, self.k)
        elif kind == "open":
            self.saved.append(self.x)
        elif kind == "res":
            self.x = self.saved.pop() + self.x
        else:
            x, g = self.saved.pop(), self.x
            while g.dim() < x.dim():
                g = g.unsqueeze(-1)
            self.x = x * (2.0 * torch.sigmoid(g))
        self.pc += 1


def _lockstep(programs: Sequence[tuple[list[_Instruction], Mapping[str, Tensor], int]], plan: Sequence[Sequence[int]],
              parts: Sequence[Tensor]) -> Tensor:
    """Run every structure's program on its part of the model axis in the order of ``plan``
    (:func:`_plan`), and concatenate the outputs.

    A group's call runs on the concatenated inputs and weights of its structures. That pays for
    its copies (one ``cat`` of the inputs and weights, one of the gradients): a grouped
    convolution of 8 same-shape 8→8 convolutions on 64 samples of 8×8 with its backward is
    1.3–2.3× faster per model than one at a time (7×7: 1.31 → 0.62 ms).
    """
    threads = [_Thread(code, params, k, x) for (code, params, k), x in zip(programs, parts, strict=True)]
    for entry in plan:
        if len(entry) == 1:
            threads[entry[0]].step()
            continue
        group = [threads[t] for t in entry]
        module = group[0].code[group[0].pc][1]
        assert module is not None
        stacked = {name: torch.cat([t.params[t.code[t.pc][2] + name] for t in group])
                   for name in ("weight", "bias") if getattr(module, name, None) is not None}
        ks = [t.k for t in group]
        ys = _forward(module, stacked, "", torch.cat([t.x for t in group], 1), sum(ks)).split(ks, 1)
        for t, y in zip(group, ys, strict=True):
            t.x = y
            t.pc += 1
    return torch.cat([t.x for t in threads], 1)


def _avg_pool3(x: Tensor) -> Tensor:
    """``AvgPool2d(3, stride=1, padding=1)`` (zero padding counted, so always ÷ 9) of ``x`` (N, M,
    C, H, W) as a sum of shifted slices per axis: the same sum in another order (float
    rounding), 1.8× faster with its backward than the pooling kernel on 64 samples × 8 channels
    × 8×8. Along a unit axis the window holds the value and two padding zeros, so that axis is
    skipped (adding zeros is exact)."""
    for axis in (3, 4):
        if x.shape[axis] > 1:
            p = F.pad(x, (1, 1) if axis == 4 else (0, 0, 1, 1))
            size = x.shape[axis]
            x = p.narrow(axis, 0, size) + p.narrow(axis, 1, size) + p.narrow(axis, 2, size)
    return x / 9.0


def _pointwise(x: Tensor, w: Tensor, bias: Tensor | None) -> Tensor:
    """A 1×1 convolution of every model as one batched matmul over the model axis: ``x`` (N, M,
    C, *spatial), ``w`` (M, O, C, 1, …) → (N, M, O, *spatial); 2–6× faster than the grouped
    convolution on the Crucible's shapes (a 1→8 stem over 32 models, 64 samples of 8×8:
    6.5 → 2.1 ms with its backward)."""
    n, m, c, *spatial = x.shape
    cols = x.movedim(0, 2).reshape(m, c, -1)  # (M, C, N·P)
    y = torch.bmm(w.reshape(m, w.shape[1], c), cols).reshape(m, -1, n, *spatial).movedim(2, 0)
    return y if bias is None else y + bias.reshape(1, m, -1, *([1] * len(spatial)))


def _broadcast(x: Tensor, m: int) -> Tensor:
    return x.unsqueeze(1).expand(x.shape[0], m, *x.shape[1:])


def _per_model_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of each model: logits ``(N, M, K)``, labels repeated per model ``(N·M,)``
    → ``(M,)``."""
    n, m, k = logits.shape
    return F.cross_entropy(logits.reshape(n * m, k), y, reduction="none").reshape(n, m).mean(0)


def train_batched(models: Sequence[Scaffold], data: TrainData, *, steps: int, lr: float) -> TrainResult:
    """Train ``models`` (one structure, any initial weights) side by side with Adam, full batch."""
    return train_mixed([models], data, steps=steps, lr=lr)


def _stacked(modules: Sequence[nn.Module]) -> dict[str, Tensor]:
    from torch.func import stack_module_state

    params, buffers = stack_module_state(list(modules))
    if buffers:
        raise TypeError("the batched trainer supports modules without buffers only")
    # Stacked shapes (M, *shape) broadcast against (N, M, C, ...) activations as they are.
    return {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}


def train_mixed(groups: Sequence[Sequence[Scaffold]], data: TrainData, *, steps: int, lr: float) -> TrainResult:
    """Train the models of several blueprint structures side by side; results are in the order
    of the concatenated ``groups``.

    The models of ``groups[g]`` share one blueprint structure, and every model shares the stem
    and head structure of the task. Stem, head, loss, backward and Adam step run once for all
    models; each structure's blueprint runs once for its group, on the group's contiguous slice
    of the model axis, so a batch of M candidates of S structures costs one training loop, not S;
    the structures run in lockstep, and a layer several of them share runs as one call
    (:func:`_lockstep`).
    """
    models = [model for group in groups for model in group]
    m = len(models)
    if m == 0 or any(not group for group in groups):
        raise ValueError("train_mixed needs at least one model and no empty group")
    template = models[0]
    stem = _stacked([model.stem for model in models])
    head = _stacked([model.head for model in models])
    blueprints: list[tuple[nn.Module, dict[str, Tensor], int, int]] = []
    start = 0
    for group in groups:
        blueprints.append((group[0].blueprint, _stacked([model.blueprint for model in group]), start, len(group)))
        start += len(group)
    leaves = [*stem.values(), *head.values(), *(v for _, params, _, _ in blueprints for v in params.values())]
    programs = [(_program(module, ""), params, k) for module, params, _, k in blueprints]
    plans: dict[tuple[int, ...], list[list[int]]] = {}  # by the blueprints' input shape (C, *spatial)

    def features(x: Tensor) -> Tensor:
        s = _forward(template.stem, stem, "", x, m)
        if len(blueprints) == 1:
            module, params, _, _ = blueprints[0]
            return _forward(module, params, "", s, m)
        # One split, not a slice per group: a slice's backward fills a zero tensor of the whole
        # batch, once per group.
        parts = s.split([k for _, _, _, k in blueprints], 1)
        shape = tuple(s.shape[2:])
        if shape not in plans:
            plans[shape] = _plan([code for code, _, _ in programs], shape)
        return _lockstep(programs, plans[shape], parts)

    def logits(x: Tensor) -> Tensor:
        return _forward(template.head, head, "", features(x), m)

    x_train = _broadcast(data.x_train, m)
    y_train = data.y_train.repeat_interleave(m)
    optimizer = _adam(leaves, lr) if leaves else None
    losses = torch.empty(steps, m, dtype=data.x_train.dtype)
    for step in range(steps):
        loss = _per_model_loss(logits(x_train), y_train)
        losses[step] = loss.detach()
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            # A non-finite loss only poisons its own model: nothing mixes models, and the
            # model is then marked unstable.
            loss.sum().backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (logits(_broadcast(data.x_eval, m)).argmax(-1) == data.y_eval[:, None]).float().mean(0)
        probe = features(_broadcast(data.x_probe, m)).transpose(0, 1).flatten(2)
        finite_params = torch.ones(m, dtype=torch.bool)
        for v in (*stem.values(), *head.values()):
            finite_params &= torch.isfinite(v.reshape(m, -1)).all(1)
        for _, params, a, k in blueprints:
            for v in params.values():
                finite_params[a:a + k] &= torch.isfinite(v.reshape(k, -1)).all(1)
    stable = (torch.isfinite(losses) & (losses < EXPLOSION_LOSS)).all(0) & finite_params
    return TrainResult(losses=losses, accuracy=accuracy, stable=stable, probe=probe)


def _adam(params: Sequence[Tensor], lr: float) -> torch.optim.Optimizer:
    # The fused kernel does the whole update in one pass per tensor: the same arithmetic for a
    # stacked tensor as for each model's own.
    return adam(params, lr=lr)


def train_single(model: Scaffold, data: TrainData, *, steps: int, lr: float) -> TrainResult:
    """The plain per-model loop (the reference :func:`train_batched` must match)."""
    params = [p for p in model.parameters()]
    optimizer = _adam(params, lr) if params else None
    losses = torch.empty(steps, 1, dtype=data.x_train.dtype)
    for step in range(steps):
        loss = F.cross_entropy(model(data.x_train), data.y_train)
        losses[step, 0] = loss.detach()
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (model(data.x_eval).argmax(-1) == data.y_eval).float().mean().reshape(1)
        probe = model.blueprint(model.stem(data.x_probe)).flatten(1).unsqueeze(0)
        finite = all(bool(torch.isfinite(p).all()) for p in params)
    stable = (torch.isfinite(losses) & (losses < EXPLOSION_LOSS)).all(0) & torch.tensor([finite])
    return TrainResult(losses=losses, accuracy=accuracy, stable=stable, probe=probe)
