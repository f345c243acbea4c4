"""Data-parallel ``esper run`` under ``torchrun --nproc-per-node N`` (DESIGN §4).

Every rank builds the same task, host and seeds from the same seed; each trains on its share of
every epoch's batches (batch ``i`` goes to rank ``i mod N``, the epoch cut to a multiple of N
so every rank takes as many steps). Before any optimizer step its gradients are averaged over
the ranks (one all-reduce per optimizer per step, through a global optimizer step pre-hook, so
the training loop itself is unchanged); identical starting weights and identical averaged
gradients keep every rank's weights identical. Floating-point buffers (BatchNorm statistics,
which each rank accumulates on its own shard) are averaged after every epoch's decision, so
they agree from the next epoch on and at the end. The controller decides on rank 0 and its
decision is broadcast; gate results and lifecycle commands are agreed by Kasmina's all-reduce
MIN primitive (:mod:`esper_core.kasmina.distributed`). Only rank 0 writes the run directory;
the other ranks write theirs to a temporary directory that is removed at the end. At the end
every rank hashes its architecture and weights and rank 0 records the hashes in the summary;
ranks that differ are an error.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import structlog
import torch
import torch.distributed as dist
from torch import Tensor, nn

from esper_core.errors import ConfigError, EsperError

logger = structlog.get_logger(__name__)


def _launch_world_size() -> int:
    """``WORLD_SIZE`` as the launcher set it (1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer") from None


def launched_with_several_processes() -> bool:
    """True under ``torchrun`` (or any launcher setting ``WORLD_SIZE``) with more than one rank."""
    return _launch_world_size() > 1


def launch_rank() -> int:
    """This process's rank: ``RANK`` under a multi-process launch, else 0. A ``RANK`` that is not
    an integer in ``[0, WORLD_SIZE)`` is refused; so is a non-zero one without ``WORLD_SIZE`` > 1,
    which would make this lone process run without writing its run directory."""
    raw = os.environ.get("RANK", "").strip()
    if not raw:
        return 0
    try:
        rank = int(raw)
    except ValueError:
        raise ConfigError(f"RANK={raw!r} is not an integer") from None
    world = max(1, _launch_world_size())
    if not 0 <= rank < world:
        raise ConfigError(f"RANK={raw!r} is outside 0..{world - 1} (WORLD_SIZE="
                          f"{os.environ.get('WORLD_SIZE', 'unset')}); only rank 0 writes the run directory, "
                          "so unset RANK or launch with torchrun")
    return rank


def init_process_group(device: str) -> tuple[int, int]:
    """Join the launcher's process group (gloo on CPU, NCCL on CUDA); returns (rank, world size)."""
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed; run without torchrun")
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


class ShardedTask:
    """A task whose training batches are this rank's share; everything else is the task's."""

    def __init__(self, task: Any, *, rank: int, world_size: int) -> None:
        self._task, self._rank, self._world = task, rank, world_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def train_batches(self, *, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        batches = list(self._task.train_batches(epoch=epoch))
        usable = len(batches) - len(batches) % self._world
        if usable == 0:
            raise ConfigError(f"an epoch has {len(batches)} training batches, fewer than the "
                              f"{self._world} ranks; use a smaller batch size or fewer processes")
        return iter(batches[self._rank:usable:self._world])


def _average(tensors: list[Tensor]) -> None:
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset:offset + n].view_as(t).to(t.dtype))
        offset += n


def _average_gradients(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    _average([p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None])


def install_gradient_averaging() -> Any:
    """Average gradients over the ranks before every optimizer step; returns the hook handle."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    return register_optimizer_step_pre_hook(_average_gradients)


def average_buffers(model: nn.Module) -> None:
    """Average the floating-point buffers (BatchNorm running statistics) over the ranks."""
    with torch.no_grad():
        _average([b for b in model.buffers() if b.is_floating_point()])


def broadcast_decision(decision: Any) -> Any:
    """Rank 0's decision, on every rank."""
    box = [decision]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def model_digest(model: nn.Module, architecture: list[dict[str, Any]]) -> str:
    """SHA-256 of the architecture records and every tensor of the state dict, bit for bit."""
    digest = hashlib.sha256(repr(architecture).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def gather_digests(digest: str) -> list[str]:
    """Every rank's digest (rank order); raises when they differ."""
    digests: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        raise EsperError(f"ranks ended with different models (digests {', '.join(d[:12] for d in digests)})")
    return [str(d) for d in digests]
