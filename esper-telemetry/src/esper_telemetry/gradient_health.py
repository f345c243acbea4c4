"""Gradient health of a module: norms, spread, vanishing/exploding fractions and a score.

Cost matters (the design notes flagged the old tracker's overhead as unmeasured), so:

* every statistic of a step is computed with a handful of batched tensor ops and kept on the
  device — nothing is copied to the host until :meth:`epoch_summary`, which performs the
  tracker's only device sync of the epoch;
* the *profile* decides how much is computed: ``minimal`` (the global norm of every step: one
  fused ``_foreach_norm`` per step, combined and judged in bulk every few hundred steps),
  ``standard`` (plus per-layer norms every ``every_n_steps`` steps) or ``diagnostic`` (every
  statistic for every layer on every step). ``benchmarks/bench_telemetry.py`` measures them.

The tracker inspects gradients after backward, in one of three ways:

* call :meth:`GradientHealthTracker.step` after ``loss.backward()``;
* pass the optimizer: the tracker hooks ``optimizer.step`` (a step pre-hook, so it sees the
  gradients that are about to be applied);
* pass ``hook_backward=True``: one forward hook on the module marks the output of every
  grad-enabled forward with a tensor hook; when backward reaches that output, the tensor hook
  queues one end-of-backward callback on the autograd engine, which measures the gradients the
  parameters then hold — exactly once per backward, without touching the training code or the
  optimizer. The run's ``gradient_health`` observer (:mod:`esper_telemetry.observer`) works this
  way. (Hooking every parameter's gradient accumulation instead costs one Python call per
  parameter per step: 1.8 % of a training step of the default CNN host, against the 2 % the
  whole ``minimal`` profile may cost.) A parameter counts as having a gradient when its
  ``.grad`` is set, so zero the gradients with ``set_to_none=True`` (the default) between steps.

No hook changes a gradient. Use the tracker as a context manager: the hooks are removed when
the block exits, on error too.

Health score: each sampled step scores every layer ``(1 − vanishing − exploding)`` (0 for a
non-finite gradient), where the fractions are element fractions in ``diagnostic`` and, in the
norm-only profiles, 0/1 verdicts on the layer's RMS gradient ``‖g‖/√n``. The epoch's score is
the mean over layers (the global gradient in ``minimal``), in [0, 1]; 1 is healthy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from esper_core.options import int_at_least, one_of, parse_options, positive_number

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

PROFILES = ("minimal", "standard", "diagnostic")
_DEFAULT_INTERVAL = {"minimal": 1, "standard": 10, "diagnostic": 1}
#: Per-step, per-parameter norms wait on the device and are folded into the epoch's
#: accumulators once this many are waiting (bounded memory, amortised cost). They wait as rows
#: of one preallocated tensor per parameter set, not as the fused kernel's one-element tensors:
#: thousands of those, each living for a hundred steps among a step's large temporaries,
#: fragmented the C heap so much that the default run's peak memory grew by some 80 MB.
_FOLD_NORMS = 4096


@frozen(kw_only=True)
class GradientHealthConfig:
    """What the tracker measures. Build it with :meth:`from_profile` or :meth:`from_options`."""

    #: minimal | standard | diagnostic (see the module docstring).
    profile: str = field(default="standard", validator=one_of(*PROFILES))
    #: Per-layer statistics every N optimizer steps; None = the profile's default
    #: (standard: 10, diagnostic: 1). The global norm is measured every step in all profiles.
    every_n_steps: int | None = field(default=None, validator=int_at_least(1, optional=True))
    #: |g| below this counts as vanishing.
    vanishing_threshold: float = field(default=1e-7, validator=positive_number())
    #: |g| above this counts as exploding.
    exploding_threshold: float = field(default=1e3, validator=positive_number())

    def __attrs_post_init__(self) -> None:
        if self.vanishing_threshold >= self.exploding_threshold:
            raise ValueError("vanishing_threshold must be below exploding_threshold")

    @property
    def interval(self) -> int:
        return self.every_n_steps or _DEFAULT_INTERVAL[self.profile]

    @property
    def per_layer(self) -> bool:
        return self.profile != "minimal"

    @classmethod
    def from_profile(cls, profile: str, **overrides: Any) -> GradientHealthConfig:
        return cls.from_options({"profile": profile, **overrides})

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> GradientHealthConfig:
        """Validate a config mapping; unknown keys and bad values raise ConfigError."""
        return parse_options(cls, options, owner="gradient-health tracker")


@frozen(kw_only=True)
class LayerHealth:
    """One layer (a module owning parameters) over the sampled steps of an epoch."""

    name: str
    samples: int
    norm_mean: float
    norm_max: float
    #: Element standard deviation of the gradient; measured in ``diagnostic`` only.
    std: float | None
    vanishing_fraction: float
    exploding_fraction: float
    nonfinite_steps: int
    score: float


@frozen(kw_only=True)
class GradientHealthReport:
    profile: str
    steps: int
    sampled_steps: int
    global_norm_mean: float | None
    global_norm_max: float | None
    nonfinite_steps: int
    score: float | None
    layers: tuple[LayerHealth, ...] = ()
    #: Mean over layers of the layers' vanishing fractions; without layers (``minimal``), the
    #: fraction of measured steps whose global RMS gradient vanished. None: nothing measured.
    vanishing_fraction: float | None = None
    #: Like :attr:`vanishing_fraction`, for exploding gradients.
    exploding_fraction: float | None = None

    def to_metrics(self) -> dict[str, float]:
        """Flat ``grad/...`` scalars for a telemetry sink or logger."""
        metrics: dict[str, float] = {"grad/steps": float(self.steps),
                                     "grad/nonfinite_steps": float(self.nonfinite_steps)}
        for name in ("global_norm_mean", "global_norm_max", "score", "vanishing_fraction",
                     "exploding_fraction"):
            value = getattr(self, name)
            if value is not None:
                metrics[f"grad/{name}"] = value
        for layer in self.layers:
            metrics[f"grad/{layer.name}/norm"] = layer.norm_mean
            metrics[f"grad/{layer.name}/score"] = layer.score
        return metrics


# Column layout of the per-layer sum accumulator (sums over sampled steps).
_NORM, _VANISH, _EXPLODE, _STD, _NONFINITE, _SCORE, _SAMPLES = range(7)
_LAYER_COLUMNS = 7
# Column layout of the global accumulator.
_G_NORM, _G_VANISH, _G_EXPLODE, _G_NONFINITE, _G_SCORE = range(5)


def _first_tensor_with_grad(output: Any) -> Any:
    """The first tensor in a module output (a tensor, or a tuple/list/dict of them) that
    backward can reach, or None."""
    import torch

    if isinstance(output, torch.Tensor):
        return output if output.requires_grad else None
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for value in output:
            found = _first_tensor_with_grad(value)
            if found is not None:
                return found
    return None


def _queue_engine_callback(callback: Any) -> None:
    """Run ``callback`` once the current backward pass has finished (all grads accumulated).

    This is the autograd engine's final-callback queue, the mechanism DDP, FSDP and
    ``torch.utils.module_tracker`` use for end-of-backward work.
    """
    from torch.autograd import Variable

    Variable._execution_engine.queue_callback(callback)


class GradientHealthTracker:
    """Accumulates gradient statistics of ``module`` step by step; summarises per epoch."""

    def __init__(self, module: nn.Module, config: GradientHealthConfig | None = None, *,
                 optimizer: torch.optim.Optimizer | None = None,
                 hook_backward: bool = False) -> None:
        import torch

        if optimizer is not None and hook_backward:
            raise ValueError("measure either on optimizer.step or after backward, not both")
        self.config = config or GradientHealthConfig()
        names: dict[str, int] = {}
        self._params: list[Any] = []
        self._param_layer: list[int] = []
        for qualified, param in module.named_parameters():
            if not param.requires_grad:
                continue
            # A layer is the module owning the parameter; the root module's own parameters
            # (a bare nn.Linear) form the layer "(root)".
            layer = qualified.rpartition(".")[0] or "(root)"
            self._param_layer.append(names.setdefault(layer, len(names)))
            self._params.append(param)
        self.layer_names: tuple[str, ...] = tuple(names)
        self._numel = [p.numel() for p in self._params]
        # Half-precision norms can overflow; ask the fused kernel for float32 results then.
        self._norm_dtype = (None if all(p.dtype == torch.float32 for p in self._params)
                            else torch.float32)
        self._handles: list[Any] = []
        self._closed = False
        self._steps = 0
        self._sampled = 0
        self._measured = 0  # steps that had at least one gradient
        self._buffers: dict[str, Any] | None = None
        self._index_cache: dict[tuple[int, ...], Any] = {}
        self._numel_cache: dict[tuple[int, ...], float] = {}
        # Per-parameter norms of recent steps, by the parameters that had gradients: a buffer
        # of rows (one per step) and how many rows are filled.
        self._pending: dict[tuple[int, ...], list[Any]] = {}
        self._pending_count = 0
        # Backward-hook mode: an end-of-backward callback is queued for the running backward.
        self._queued = False
        if optimizer is not None:
            self._handles.append(optimizer.register_step_pre_hook(self._pre_step_hook))
        if hook_backward:
            self._handles.append(module.register_forward_hook(self._after_forward))

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def hook_count(self) -> int:
        """Hooks this tracker holds (0 after :meth:`close`)."""
        return len(self._handles)

    @property
    def parameters(self) -> tuple[Any, ...]:
        """The parameters this tracker watches, in module order."""
        return tuple(self._params)

    def __enter__(self) -> GradientHealthTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove every hook; idempotent. Accumulated statistics stay readable."""
        handles, self._handles = self._handles, []
        for handle in handles:
            handle.remove()
        self._closed = True

    def _pre_step_hook(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.step()

    def _after_forward(self, module: Any, args: Any, output: Any) -> None:
        # Runs after every forward of the module; only a grad-enabled one can have a backward.
        import torch

        if not torch.is_grad_enabled():
            return
        tensor = _first_tensor_with_grad(output)
        if tensor is not None:
            # The hook lives as long as this output's graph; nothing to remove later.
            tensor.register_hook(self._on_output_grad)

    def _on_output_grad(self, grad: Any) -> None:
        # Called by autograd when backward reaches the module's output; it must stay cheap.
        if not self._queued and not self._closed:
            self._queued = True
            _queue_engine_callback(self._after_backward)

    def _after_backward(self) -> None:
        self._queued = False
        if not self._closed:
            params = self._params
            self._measure(tuple(i for i in range(len(params)) if params[i].grad is not None))

    def _allocate(self, device: Any) -> dict[str, Any]:
        import torch

        n_layers = len(self.layer_names)
        return {
            "layer_sum": torch.zeros(n_layers, _LAYER_COLUMNS, device=device, dtype=torch.float32),
            "layer_max": torch.zeros(n_layers, device=device, dtype=torch.float32),
            "global_sum": torch.zeros(5, device=device, dtype=torch.float32),
            "global_max": torch.zeros((), device=device, dtype=torch.float32),
            "numel": torch.tensor([float(n) for n in self._numel], device=device),
            "layer_of": torch.tensor(self._param_layer, device=device, dtype=torch.long),
        }

    def step(self) -> None:
        """Measure the gradients now on the module's parameters (after backward)."""
        if self._closed:
            raise RuntimeError("step() on a closed GradientHealthTracker")
        self._measure(tuple(i for i, p in enumerate(self._params) if p.grad is not None))

    def _measure(self, present: tuple[int, ...]) -> None:
        import torch

        self._steps += 1
        if not present:
            return
        self._measured += 1
        grads = [self._params[i].grad for i in present]
        # One fused kernel per dtype/device group for all parameter norms (what
        # clip_grad_norm_ uses). That is all a step costs in ``minimal``: the per-parameter
        # norms wait on the device and are combined in bulk every few hundred steps.
        if self._norm_dtype is None:
            norms = torch._foreach_norm(grads)
        else:
            norms = torch._foreach_norm(grads, 2, dtype=self._norm_dtype)
        pending = self._pending.get(present)
        if pending is None:
            rows = -(-_FOLD_NORMS // len(present))  # a fold comes before it can overflow
            buffer = torch.empty(rows, len(present), device=norms[0].device, dtype=norms[0].dtype)
            pending = self._pending[present] = [buffer, 0]
            if present not in self._numel_cache:
                self._numel_cache[present] = float(sum(self._numel[i] for i in present))
        row = pending[0][pending[1]]
        torch.stack(norms, out=row)
        pending[1] += 1
        self._pending_count += len(norms)
        if self._buffers is None:
            self._buffers = self._allocate(norms[0].device)
        if self._pending_count >= _FOLD_NORMS:
            self._fold()
        cfg = self.config
        if cfg.per_layer and (self._steps - 1) % cfg.interval == 0:
            self._sampled += 1
            index = self._index_cache.get(present)
            if index is None:
                index = torch.tensor(present, device=norms[0].device, dtype=torch.long)
                self._index_cache[present] = index
            self._accumulate_layers(grads, row,  # (a fold leaves the rows' values as they are)
                                    self._buffers["numel"].index_select(0, index),
                                    self._buffers["layer_of"].index_select(0, index))

    def _fold(self) -> None:
        """Add the waiting per-step norms into the accumulators (no device sync)."""
        import torch

        if not self._pending_count:
            return
        self._pending_count = 0
        assert self._buffers is not None
        cfg = self.config
        for present, pending in self._pending.items():
            (buffer, used), pending[1] = pending, 0
            if not used:
                continue
            # One row per step: that step's per-parameter norms, combined into its global norm.
            total = torch.linalg.vector_norm(buffer[:used], dim=1)
            finite = torch.isfinite(total)
            rms = total / math.sqrt(self._numel_cache[present])
            vanish = (rms < cfg.vanishing_threshold) & finite
            explode = (rms > cfg.exploding_threshold) & finite
            safe = torch.where(finite, total, torch.zeros_like(total))
            healthy = finite & ~vanish & ~explode
            self._buffers["global_sum"].add_(torch.stack([
                safe.sum(), vanish.sum(), explode.sum(), (~finite).sum(), healthy.sum(),
            ]).float())
            torch.maximum(self._buffers["global_max"], safe.max(),
                          out=self._buffers["global_max"])

    def _accumulate_layers(self, grads: list[torch.Tensor], norms: torch.Tensor,
                           numel: torch.Tensor, layer_of: torch.Tensor) -> None:
        import torch

        assert self._buffers is not None
        cfg = self.config
        n_layers = len(self.layer_names)
        columns = torch.zeros(len(grads), 5, device=norms.device, dtype=torch.float32)
        columns[:, 0] = norms.float().square()
        columns[:, 1] = numel
        if cfg.profile == "diagnostic":
            # Element statistics, one small reduction per parameter, stacked so the whole
            # step still adds into the accumulator with a single index_add_.
            stats = torch.stack([
                torch.stack([(g.abs() < cfg.vanishing_threshold).sum().float(),
                             (g.abs() > cfg.exploding_threshold).sum().float(),
                             g.sum(dtype=torch.float32)])
                for g in grads
            ])
            columns[:, 2:5] = stats
        per_layer = torch.zeros(n_layers, 5, device=norms.device, dtype=torch.float32)
        per_layer.index_add_(0, layer_of, columns)
        sumsq, count = per_layer[:, 0], per_layer[:, 1]
        seen = count > 0
        safe_count = count.clamp(min=1.0)
        norm = sumsq.sqrt()
        finite = torch.isfinite(norm)
        if cfg.profile == "diagnostic":
            vanish = per_layer[:, 2] / safe_count
            explode = per_layer[:, 3] / safe_count
            mean = per_layer[:, 4] / safe_count
            std = (sumsq / safe_count - mean.square()).clamp(min=0.0).sqrt()
        else:
            rms = norm / safe_count.sqrt()
            vanish = (rms < cfg.vanishing_threshold).float()
            explode = (rms > cfg.exploding_threshold).float()
            std = torch.zeros_like(norm)
        ok = (finite & seen).float()
        score = (1.0 - vanish - explode).clamp(min=0.0) * ok
        zero = torch.zeros_like(norm)
        update = torch.stack([  # columns in _NORM … _SAMPLES order
            torch.where(finite, norm, zero), torch.where(finite, vanish, zero) * ok,
            torch.where(finite, explode, zero) * ok, torch.where(finite, std, zero) * ok,
            (~finite & seen).float(), score, seen.float(),
        ], dim=1)
        self._buffers["layer_sum"].add_(update)
        torch.maximum(self._buffers["layer_max"], torch.where(finite, norm, zero),
                      out=self._buffers["layer_max"])

    def epoch_summary(self, *, reset: bool = True) -> GradientHealthReport:
        """Statistics since the last summary (one device→host copy), then start afresh."""
        steps, sampled = self._steps, self._sampled
        if self._buffers is None:
            report = GradientHealthReport(profile=self.config.profile, steps=steps,
                                          sampled_steps=0, global_norm_mean=None,
                                          global_norm_max=None, nonfinite_steps=0, score=None)
        else:
            import torch

            self._fold()
            b = self._buffers
            host = torch.cat([b["global_sum"], b["global_max"].reshape(1),
                              b["layer_max"], b["layer_sum"].reshape(-1)]).tolist()
            report = self._report(steps, sampled, host)
        if reset:
            self._steps = self._sampled = self._measured = 0
            # A backward that died half-way never ran its end-of-backward callback.
            self._queued = False
            if self._buffers is not None:
                for key in ("layer_sum", "layer_max", "global_sum", "global_max"):
                    self._buffers[key].zero_()
        return report

    def _report(self, steps: int, sampled: int, host: list[float]) -> GradientHealthReport:
        n_layers = len(self.layer_names)
        g_sum, g_max = host[:5], host[5]
        layer_max = host[6:6 + n_layers]
        width = _LAYER_COLUMNS
        rows = [host[6 + n_layers + width * i: 6 + n_layers + width * (i + 1)]
                for i in range(n_layers)]
        measured = self._measured - int(g_sum[_G_NONFINITE])
        layers = []
        for name, row, peak in zip(self.layer_names, rows, layer_max, strict=True):
            samples = int(row[_SAMPLES])
            if samples == 0:
                continue
            finite_samples = max(samples - int(row[_NONFINITE]), 1)
            layers.append(LayerHealth(
                name=name,
                samples=samples,
                norm_mean=row[_NORM] / finite_samples,
                norm_max=peak,
                std=row[_STD] / finite_samples if self.config.profile == "diagnostic" else None,
                vanishing_fraction=row[_VANISH] / finite_samples,
                exploding_fraction=row[_EXPLODE] / finite_samples,
                nonfinite_steps=int(row[_NONFINITE]),
                score=row[_SCORE] / samples,
            ))
        vanishing: float | None = None
        exploding: float | None = None
        if layers:
            score: float | None = sum(layer.score for layer in layers) / len(layers)
            vanishing = sum(layer.vanishing_fraction for layer in layers) / len(layers)
            exploding = sum(layer.exploding_fraction for layer in layers) / len(layers)
        elif self._measured:
            score = g_sum[_G_SCORE] / self._measured
            vanishing = g_sum[_G_VANISH] / self._measured
            exploding = g_sum[_G_EXPLODE] / self._measured
        else:
            score = None
        return GradientHealthReport(
            profile=self.config.profile,
            steps=steps,
            sampled_steps=sampled,
            global_norm_mean=g_sum[_G_NORM] / measured if measured > 0 else None,
            global_norm_max=g_max if measured > 0 else None,
            nonfinite_steps=int(g_sum[_G_NONFINITE]),
            score=score,
            layers=tuple(layers),
            vanishing_fraction=vanishing,
            exploding_fraction=exploding,
        )
