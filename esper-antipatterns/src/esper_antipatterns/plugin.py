"""The ``antipatterns`` plugin: the ten anti-pattern blueprints, their penalties, a command.

Importing this module never imports torch: factories are lazy references and the parameter
estimates are pure Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esper_antipatterns import estimates
from esper_antipatterns.catalog import ANTIPATTERNS, TOPOLOGY
from esper_core.contracts.specs import BlueprintSpec, ObserverSpec, RewardTermSpec
from esper_core.lazy import lazy
from esper_core.markers import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import click

PAPER = "Esper seed 000: Blueprint Compiler Appendix: Anti-Pattern Blueprints"


@hookimpl
def esper_register_blueprints() -> list[BlueprintSpec]:
    return [
        BlueprintSpec(
            name=entry.name,
            topology=TOPOLOGY,
            factory=lazy(entry.factory),
            param_estimate=getattr(estimates, entry.name),
            description=entry.description,
            action_index=entry.index,
            is_antipattern=True,
            paper=PAPER,
            metadata=entry.metadata(),
        )
        for entry in ANTIPATTERNS
    ]


@hookimpl
def esper_register_reward_terms() -> list[RewardTermSpec]:
    from esper_antipatterns.rewards import antipattern_reward_terms

    return antipattern_reward_terms()


@hookimpl
def esper_register_observers() -> list[ObserverSpec]:
    return [
        ObserverSpec(
            name="failure_signatures",
            factory=lazy("esper_antipatterns.observer:FailureSignatureObserver.from_options"),
            description="detects NaN/Inf, gradient collapse/explosion, plateau and cost without benefit per seed",
        )
    ]


@hookimpl
def esper_add_commands(cli: click.Group) -> None:
    from esper_antipatterns.cli import antipatterns_command

    cli.add_command(antipatterns_command)
