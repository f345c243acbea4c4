"""The ``cnn`` entry point: CNN blueprints and image tasks. Imports no torch."""

from __future__ import annotations

from esper_blueprints_cnn.catalog import blueprint_specs, task_specs
from esper_core.contracts.specs import BlueprintSpec, TaskSpec
from esper_core.markers import hookimpl


@hookimpl
def esper_register_blueprints() -> list[BlueprintSpec]:
    return blueprint_specs()


@hookimpl
def esper_register_tasks() -> list[TaskSpec]:
    return task_specs()
