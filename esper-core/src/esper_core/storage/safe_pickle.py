"""The pickle of a run checkpoint's bookkeeping, restricted to classes that carry data.

A plain ``pickle.loads`` runs any callable a file names (``os.system`` with an argument is
four opcodes), so a run checkpoint is unpickled here by an unpickler that resolves only the
globals in :data:`ALLOWED`: the containers, enums and attrs records the engine and the shipped
policies and observers keep between epochs, plus NumPy's array and dtype constructors (their
buffers are checked against their shapes). Tensors never enter the pickle: the pickler hands
each one out by persistent id and they travel in the checkpoint's ``weights_only`` part,
so no nested ``torch.load`` of pickled bytes happens either.

Anything else — a function, a module attribute, a third-party class — is refused with the
name it asked for. The same check runs when a checkpoint is written, so a policy or observer
whose ``state_dict`` holds an unlisted class fails at its first checkpoint, not at resume.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import torch

#: ``module:qualified name`` of every global a run checkpoint's bookkeeping may name. Each is
#: a container, an enum or a record class whose construction and ``__setstate__`` only store
#: values (no I/O, no calls into what they are given).
ALLOWED: frozenset[str] = frozenset({
    # containers and records the standard library pickles by name
    "collections:OrderedDict",
    "collections:deque",
    "builtins:frozenset",
    "builtins:set",
    "torch:Size",
    # NumPy arrays and scalars (the RNG stream's state; _frombuffer checks size against shape)
    "numpy:dtype",
    "numpy._core.numeric:_frombuffer",
    "numpy.core.numeric:_frombuffer",
    "numpy._core.multiarray:scalar",
    "numpy.core.multiarray:scalar",
    # esper-core: slot lifecycle, ledger, reports and decisions
    "esper_core.contracts.stages:SeedStage",
    "esper_core.contracts.decisions:Op",
    "esper_core.contracts.decisions:Decision",
    "esper_core.contracts.reports:EpochReport",
    "esper_core.contracts.reports:SlotReport",
    "esper_core.contracts.reports:TrainingSignals",
    "esper_core.kasmina.slot:SlotState",
    "esper_core.kasmina.gradients:GradientRatioTracker",
    "esper_core.tolaria.ledger:SeedLedger",
    "esper_core.tolaria.ledger:SeedRecord",
    # esper-policies: the heuristic's tracker, rotation and decision history
    "esper_policies.heuristic:DecisionRecord",
    "esper_policies.tracker:CullEvent",
    "esper_policies.tracker:SlotSignals",
    "esper_policies.tracker:_SlotState",
    "esper_policies.rotation:BlueprintPick",
    # esper-antipatterns: the failure detector an observer keeps
    "esper_antipatterns.detectors:DetectorConfig",
    "esper_antipatterns.detectors:FailureDetector",
    "esper_antipatterns.detectors:SeedObservation",
    "esper_antipatterns.detectors:_SeedIdentity",
    "esper_antipatterns.detectors:_SeedHistory",
})

_TENSOR = "tensor"


class StateNotAllowed(pickle.UnpicklingError):
    """The pickle names a global outside :data:`ALLOWED`."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"{name} is not a class a run checkpoint may hold")


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, tensors: list[torch.Tensor]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.tensors = tensors

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            self.tensors.append(obj.detach())
            return (_TENSOR, len(self.tensors) - 1, str(obj.device))
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, tensors: list[Any]) -> None:
        super().__init__(file)
        self.tensors = tensors

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}:{name}"
        if qualified in ALLOWED or (module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        raise StateNotAllowed(qualified)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 3 and pid[0] == _TENSOR and type(pid[1]) is int
                and 0 <= pid[1] < len(self.tensors) and isinstance(pid[2], str)):
            raise pickle.UnpicklingError(f"unknown persistent id {str(pid)[:80]}")
        tensor = self.tensors[pid[1]]
        if not isinstance(tensor, torch.Tensor):
            raise pickle.UnpicklingError(f"persistent id {pid[1]} is not a tensor")
        # The tensor part loads on the CPU; a GPU tensor (a seed's gradient EMA) goes back to
        # its device when this machine has it.
        if pid[2].startswith("cuda") and torch.cuda.is_available():
            return tensor.to(pid[2])
        return tensor


def dumps(state: Any) -> tuple[bytes, list[torch.Tensor]]:
    """The pickle of ``state`` without its tensors, and the tensors (in persistent-id order)."""
    buffer, tensors = io.BytesIO(), []  # type: tuple[io.BytesIO, list[torch.Tensor]]
    _Pickler(buffer, tensors).dump(state)
    return buffer.getvalue(), tensors


def loads(blob: bytes, tensors: list[Any]) -> Any:
    """Unpickle what :func:`dumps` wrote; raises :class:`StateNotAllowed` for any global outside
    :data:`ALLOWED` (before calling it) and ``UnpicklingError`` for a malformed pickle."""
    return _Unpickler(io.BytesIO(blob), tensors).load()
