"""torch's fused Adam, AdamW and SGD, stepped without importing ``torch._dynamo``.

Every ``torch.optim`` optimizer imports ``torch._dynamo`` on its first ``step`` (the step is
wrapped to place compiler graph breaks), and on the first ``add_param_group``, ``zero_grad``,
``state_dict`` and ``load_state_dict`` (each is wrapped to keep the compiler out). With the CUDA
build of torch that import pulls in sympy and triton: on the 2-core CPU machine it took 2.6 s and
added 170 MB of resident memory to a run that never compiles anything, a third of the time to
the default run's first epoch.

The classes here are ``torch.optim.Adam``, ``AdamW`` and ``SGD`` (so schedulers, step hooks,
``state_dict`` formats and ``isinstance`` checks all work) with those wrappers skipped: the four
bookkeeping methods are torch's own functions, unwrapped, and the step gathers each parameter
group's tensors and calls the same fused kernels that ``fused=True`` calls
(``torch._fused_adam_``, ``_fused_adamw_``, ``_fused_sgd_``), in the same order, so every update
is bit-identical to torch's.
Options the fused kernels do not cover here (amsgrad, maximize, capturable, differentiable, a
tensor learning rate, sparse gradients) are refused with an error rather than stepped another
way. :func:`adam` and :func:`sgd` pick these classes where the fused kernels take the
parameters, and torch's own classes elsewhere; every optimizer Esper creates comes from them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, overload

import torch
from torch import Tensor


def _unwrapped(name: str) -> Callable[..., Any]:
    # ``torch._disable_dynamo`` decorates with functools.wraps, which keeps the original
    # function as ``__wrapped__``; outside a compiled region the wrapper only adds the import.
    method = getattr(torch.optim.Optimizer, name)
    return getattr(method, "__wrapped__", method)


def _by_device_and_dtype(tensors: list[list[Tensor]]) -> list[list[list[Tensor]]]:
    """Split parallel tensor lists into runs that share the first list's device and dtype, in
    first-seen order (the order the fused kernels are called in by torch)."""
    runs: dict[tuple[torch.device, torch.dtype], list[list[Tensor]]] = {}
    for index, lead in enumerate(tensors[0]):
        run = runs.setdefault((lead.device, lead.dtype), [[] for _ in tensors])
        for column, values in zip(run, tensors, strict=True):
            column.append(values[index])
    return list(runs.values())


class _EagerStep:
    """The bookkeeping methods without their compiler wrappers, and a step over each group's
    fused kernel (:meth:`_fused_group_step`)."""

    add_param_group = _unwrapped("add_param_group")
    zero_grad = _unwrapped("zero_grad")
    state_dict = _unwrapped("state_dict")
    load_state_dict = _unwrapped("load_state_dict")

    param_groups: list[dict[str, Any]]
    state: defaultdict[Tensor, Any]
    #: Group options the fused step leaves to torch.optim: each must be false in every group.
    _refused: tuple[str, ...] = ("maximize", "differentiable")

    def _fused_group_step(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    # The overloads are torch.optim.Optimizer.step's, which this step replaces.
    @overload
    def step(self, closure: None = None) -> None: ...
    @overload
    def step(self, closure: Callable[[], float]) -> float: ...
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                self._check(group)
                self._fused_group_step(group)
        return loss

    def _check(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        for option in self._refused:
            if group.get(option):
                raise ValueError(f"{name} does not take {option}=True; use torch.optim instead")
        if isinstance(group["lr"], Tensor):
            raise ValueError(f"{name} takes a float learning rate, not a tensor")
        if any(p.grad is not None and p.grad.is_sparse for p in group["params"]):
            raise ValueError(f"{name} does not take sparse gradients")


class _AdamStep(_EagerStep):
    """The step shared by Adam and AdamW: one fused kernel call per device and dtype."""

    _refused = ("amsgrad", "maximize", "capturable", "differentiable")

    def _fused_group_step(self, group: dict[str, Any]) -> None:
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:  # torch's lazy initialisation for fused Adam and AdamW
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        if not params:
            return
        # Adam adds the L2 term to the gradient; AdamW (decoupled) shrinks the weights directly.
        decoupled = group.get("decoupled_weight_decay", isinstance(self, torch.optim.AdamW))
        kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
        beta1, beta2 = group["betas"]
        for run in _by_device_and_dtype([params, grads, exp_avgs, exp_avg_sqs, steps]):
            torch._foreach_add_(run[4], 1)
            kernel(run[0], run[1], run[2], run[3], [], run[4], amsgrad=False, lr=group["lr"],
                   beta1=float(beta1), beta2=float(beta2), weight_decay=group["weight_decay"],
                   eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)


class FusedAdam(_AdamStep, torch.optim.Adam):
    """Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization") with torch's fused
    kernel; ``fused=True`` always."""

    def __init__(self, params: Iterable[Any], **options: Any) -> None:
        super().__init__(params, fused=True, **options)


class FusedAdamW(_AdamStep, torch.optim.AdamW):
    """AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization") with torch's
    fused kernel; ``fused=True`` always."""

    def __init__(self, params: Iterable[Any], **options: Any) -> None:
        super().__init__(params, fused=True, **options)


class FusedSGD(_EagerStep, torch.optim.SGD):
    """SGD with momentum (torch's formulation: the buffer accumulates the raw gradient, no
    dampening by default) and torch's fused kernel; ``fused=True`` always."""

    def __init__(self, params: Iterable[Any], **options: Any) -> None:
        super().__init__(params, fused=True, **options)

    def _fused_group_step(self, group: dict[str, Any]) -> None:
        params = [p for p in group["params"] if p.grad is not None]
        if group["momentum"] == 0:
            self._fused_sgd(group, params, None)
            return
        # A parameter without a momentum buffer takes its first step (the buffer starts as its
        # gradient); torch's fused step would only do that for a group where no buffer exists.
        fresh = [p for p in params if self.state[p].get("momentum_buffer") is None]
        ongoing = [p for p in params if self.state[p].get("momentum_buffer") is not None]
        self._fused_sgd(group, fresh, True)
        self._fused_sgd(group, ongoing, False)

    def _fused_sgd(self, group: dict[str, Any], params: list[Tensor],
                   first_step: bool | None) -> None:
        """One kernel call per device and dtype; ``first_step`` None means no momentum."""
        if not params:
            return
        grads = [p.grad for p in params]
        if first_step is None:
            buffers: list[Tensor] = []
        elif first_step:
            buffers = [torch.empty_like(g) for g in grads]  # type: ignore[arg-type]
        else:
            buffers = [self.state[p]["momentum_buffer"] for p in params]
        columns = [params, grads, buffers] if buffers else [params, grads]
        for run in _by_device_and_dtype(columns):  # type: ignore[arg-type]
            torch._fused_sgd_(run[0], run[1], run[2] if buffers else [],
                              weight_decay=group["weight_decay"], momentum=group["momentum"],
                              lr=group["lr"], dampening=group["dampening"],
                              nesterov=group["nesterov"], maximize=False,
                              is_first_step=bool(first_step), grad_scale=None, found_inf=None)
        if first_step:
            for p, buffer in zip(params, buffers, strict=True):
                self.state[p]["momentum_buffer"] = buffer


_FUSED_DEVICES = frozenset({"cpu", "cuda"})


def fusable(params: list[Tensor]) -> bool:
    """Whether torch's fused optimizer kernels take ``params``: floating point, on one device
    of a supported type."""
    if not params:
        return False
    devices = {p.device for p in params}
    if len(devices) != 1 or next(iter(devices)).type not in _FUSED_DEVICES:
        return False
    return all(p.is_floating_point() for p in params)


def adam(params: Iterable[Tensor], *, lr: float, decoupled: bool = False,
         **options: Any) -> torch.optim.Optimizer:
    """Adam (or AdamW with ``decoupled``) over ``params``: the fused class above where the fused
    kernel takes them, torch's own otherwise. ``options`` are torch's (eps, betas, weight_decay)."""
    params = list(params)
    if fusable(params):
        return (FusedAdamW if decoupled else FusedAdam)(params, lr=lr, **options)
    return (torch.optim.AdamW if decoupled else torch.optim.Adam)(params, lr=lr, **options)


def sgd(params: Iterable[Tensor], *, lr: float, **options: Any) -> torch.optim.Optimizer:
    """SGD over ``params``: :class:`FusedSGD` where the fused kernel takes them, torch's own
    otherwise. ``options`` are torch's (momentum, weight_decay, nesterov, dampening)."""
    params = list(params)
    if fusable(params):
        return FusedSGD(params, lr=lr, **options)
    return torch.optim.SGD(params, lr=lr, **options)
