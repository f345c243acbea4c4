"""Hook specifications: the whole extension surface of Esper (DESIGN §2).

Every hook is called with keyword arguments only. The ``register`` hooks are called once, when
the plugin manager builds its registries at start-up; each returns a list of specs and every
plugin's list is merged (duplicate names are an error naming both distributions). Plugins are
called one at a time, in load order; ``@hookimpl(tryfirst=True)`` / ``trylast=True`` moves a
plugin's call (and so its components' place in the registry) to the front or back, and
``@hookimpl(specname="esper_register_...")`` lets a function of another name implement a hook.
This module imports no torch: types are for checkers only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esper_core.markers import hookspec

if TYPE_CHECKING:  # pragma: no cover
    import click

    from esper_core.contracts.specs import (
        AlphaScheduleSpec,
        BlueprintSpec,
        GateSpec,
        GeneratorSpec,
        ObserverSpec,
        PolicySpec,
        RewardTermSpec,
        SinkSpec,
        TaskSpec,
        TopologySpec,
    )


@hookspec
def esper_register_blueprints() -> list[BlueprintSpec]:
    """Called once at start-up to build the blueprint catalog.

    Return the blueprints this plugin contributes (an empty list for none). Names must be
    unique per topology across all plugins.
    """


@hookspec
def esper_register_tasks() -> list[TaskSpec]:
    """Called once at start-up to build the task registry.

    Return the tasks (host factory + data + defaults) this plugin contributes.
    """


@hookspec
def esper_register_policies() -> list[PolicySpec]:
    """Called once at start-up to build the policy registry.

    Return the Tamiyo controllers this plugin contributes, selectable with ``--policy NAME``.
    """


@hookspec
def esper_register_gates() -> list[GateSpec]:
    """Called once at start-up to build the gate registry.

    Return gates guarding entry into a lifecycle stage. A gate with ``replaces_default`` set
    replaces the built-in gates for its stage on its topology; otherwise it adds a check that
    must pass as well.
    """


@hookspec
def esper_register_reward_terms() -> list[RewardTermSpec]:
    """Called once at start-up to build the reward-term registry.

    Return additive reward terms; each names the presets it belongs to and its weight there.
    """


@hookspec
def esper_register_telemetry_sinks() -> list[SinkSpec]:
    """Called once at start-up to build the telemetry-sink registry.

    Return sinks selectable by name with ``--telemetry NAME,...`` or the ``telemetry`` config key.
    """


@hookspec
def esper_register_alpha_schedules() -> list[AlphaScheduleSpec]:
    """Called once at start-up to build the blending-schedule registry.

    Return α schedules selectable with the ``kasmina.alpha_schedule`` config key.
    """


@hookspec
def esper_register_observers() -> list[ObserverSpec]:
    """Called once at start-up to build the training-observer registry.

    Return observers that watch each episode's model and add events after every epoch (for
    instance failure-signature anomalies, which also feed the reward terms). All registered
    observers run unless the run names a subset with ``--observers``.
    """


@hookspec
def esper_register_generators() -> list[GeneratorSpec]:
    """Called once at start-up to build the blueprint-generator registry.

    Return generators selectable with ``esper discover --generator NAME`` (random search,
    regularised evolution, the Architect ...).
    """


@hookspec
def esper_register_topologies() -> list[TopologySpec]:
    """Called once at start-up to build the topology registry.

    Return the host topologies this plugin provides (``cnn``, ``transformer`` ...): how a slot
    of each carries its tensor, so that the conformance kit can feed its blueprints.
    """


@hookspec
def esper_add_commands(cli: click.Group) -> None:
    """Called once when the ``esper`` command group is built.

    Add sub-commands to ``cli`` (e.g. ``cli.add_command(report)``). The return value is ignored.
    Every ``click.Path`` parameter of an added command (and of a group's sub-commands) refuses an
    empty or blank path, and one spelled as a directory where it names a file (``dir_okay=False``).
    """
