"""Cross-rank agreement for data-parallel runs (DESIGN §4).

Every rank must hold the same architecture, so a gate passes, and a lifecycle command takes
effect, only if it does so on every rank: an all-reduce MIN over the ranks' answers. When
``torch.distributed`` is not initialised each function is the identity and costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _device() -> torch.device:
    # NCCL only reduces CUDA tensors; gloo (and mpi) reduce CPU tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def agree_min_many(values: Sequence[int]) -> list[int]:
    """Element-wise minimum of ``values`` over all ranks (one collective for the whole list)."""
    if not is_distributed() or not values:
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.int64, device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return [int(v) for v in tensor.tolist()]


def agree_min(value: int) -> int:
    """The smallest ``value`` any rank holds."""
    return agree_min_many([int(value)])[0]


def agree(flag: bool) -> bool:
    """True only if every rank says True."""
    return bool(agree_min(int(bool(flag))))


def agree_all(flags: Sequence[bool]) -> list[bool]:
    """Element-wise :func:`agree` of several flags in one collective."""
    return [bool(v) for v in agree_min_many([int(bool(f)) for f in flags])]
