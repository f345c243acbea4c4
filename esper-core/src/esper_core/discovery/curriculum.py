"""The Crucible's micro-curriculum: what a task is, and where the tasks come from.

Core defines no task. The distribution that provides a topology declares the tasks its
blueprints are scored on (``TopologySpec.crucible_tasks``: for ``cnn``, esper-blueprints-cnn's
xor, temporal and image tasks); ``esper discover`` searches the installed topology that
declares some.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from attrs import frozen
from torch import nn

from esper_core.contracts.specs import TopologySpec
from esper_core.discovery.batched import TrainData
from esper_core.errors import ConfigError, UnknownNameError
from esper_core.plugins.registry import Catalog


@frozen(kw_only=True)
class CrucibleTask:
    """One curriculum task: its data, the scaffold around a candidate and its training budget.

    ``make_data(seed)`` returns the task's :class:`TrainData` (the same tensors for the same
    seed); ``make_stem(width)`` the layers that bring an input to the slot, shaped ``(width,
    *slot_spatial)``; the head pools the slot's output and classifies it."""

    name: str
    description: str
    width: int  # the slot width a candidate is built for
    slot_spatial: tuple[int, ...]  # the slot's spatial size
    n_classes: int
    steps: int
    lr: float
    make_data: Callable[[int], TrainData]
    make_stem: Callable[[int], nn.Module]

    @property
    def slot_shape(self) -> tuple[int, ...]:
        return (self.width, *self.slot_spatial)

    def make_head(self) -> nn.Module:
        from esper_core.discovery.compile import GlobalPool

        return nn.Sequential(GlobalPool(), nn.Linear(self.width, self.n_classes))


def discovery_topology(catalog: Catalog) -> TopologySpec:
    """The installed topology ``esper discover`` searches: the one that declares Crucible tasks."""
    found = [t for t in catalog.topologies if t.crucible_tasks is not None]
    if not found:
        raise ConfigError("no installed topology declares Crucible tasks for `esper discover`; "
                          "pip install esper-blueprints-cnn (its cnn topology)")
    if len(found) > 1:
        owners = " and ".join(f"{t.name!r} (from {catalog.topologies.provider(t.name).distribution})"
                              for t in found)
        raise ConfigError(f"two installed topologies declare Crucible tasks: {owners}; uninstall one")
    return found[0]


def tasks_of(topology: TopologySpec) -> dict[str, CrucibleTask]:
    """The curriculum ``topology`` declares, by name, in its order."""
    if topology.crucible_tasks is None:
        raise ConfigError(f"topology {topology.name!r} declares no Crucible tasks")
    return {task.name: task for task in topology.crucible_tasks()}


def installed_tasks() -> dict[str, CrucibleTask]:
    """The curriculum of the installed discovery topology (for a Crucible given none)."""
    from esper_core.discovery.installed import installed_catalog

    return tasks_of(discovery_topology(installed_catalog()))


def get_tasks(names: Sequence[str] | None,
              available: Mapping[str, CrucibleTask] | None = None) -> tuple[CrucibleTask, ...]:
    """The named tasks of ``available`` (default: the installed curriculum), in the order
    given, or all of them for ``None``; an unknown name lists the known ones."""
    tasks = installed_tasks() if available is None else available
    if names is None:
        return tuple(tasks.values())
    out = []
    for name in names:
        if name not in tasks:
            raise UnknownNameError("crucible task", name, tasks)
        out.append(tasks[name])
    return tuple(out)
