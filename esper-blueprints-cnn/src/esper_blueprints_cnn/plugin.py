"""The ``cnn`` entry point: CNN blueprints and image tasks. Imports no torch."""

from __future__ import annotations

from esper_blueprints_cnn.catalog import TOPOLOGY, blueprint_specs, task_specs
from esper_core.contracts.specs import BlueprintSpec, TaskSpec, TopologySpec
from esper_core.lazy import lazy
from esper_core.markers import hookimpl


@hookimpl
def esper_register_blueprints() -> list[BlueprintSpec]:
    return blueprint_specs()


@hookimpl
def esper_register_tasks() -> list[TaskSpec]:
    return task_specs()


@hookimpl
def esper_register_topologies() -> list[TopologySpec]:
    return [TopologySpec(name=TOPOLOGY, description="convolutional image hosts: a slot carries (batch, C, H, W)",
                         example_input=lazy("esper_blueprints_cnn.topology:example_input"),
                         crucible_tasks=lazy("esper_blueprints_cnn.crucible_tasks:crucible_tasks"),
                         token_spatial=(1, 1))]
