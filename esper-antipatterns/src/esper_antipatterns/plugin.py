"""The ``antipatterns`` plugin: the ten anti-pattern blueprints (a CNN and a transformer form of
each), their penalties, a command.

Importing this module never imports torch: the blueprints are declared with
:mod:`esper_core.blueprint_catalog` (factories are ``module:attr`` paths, imported when a seed is
built) and the parameter estimates are pure Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esper_antipatterns.catalog import ANTIPATTERNS, BLUEPRINT_PACKAGE, TRANSFORMER_ANTIPATTERNS, Antipattern
from esper_core.contracts.specs import BlueprintSpec, ObserverSpec, RewardTermSpec
from esper_core.lazy import lazy
from esper_core.markers import hookimpl
from esper_core.sdk import BlueprintEntry, declare_blueprints

if TYPE_CHECKING:  # pragma: no cover
    import click

PAPER = "Esper seed 000: Blueprint Compiler Appendix: Anti-Pattern Blueprints"


def _declare(entries: tuple[Antipattern, ...]) -> list[BlueprintSpec]:
    return declare_blueprints(topology=entries[0].topology, factories=BLUEPRINT_PACKAGE, entries=[
        BlueprintEntry(name=a.name, index=a.index, factory=a.factory, estimate=a.estimate,
                       description=a.description, is_antipattern=True, paper=PAPER, metadata=a.metadata())
        for a in entries
    ])


@hookimpl
def esper_register_blueprints() -> list[BlueprintSpec]:
    return _declare(ANTIPATTERNS) + _declare(TRANSFORMER_ANTIPATTERNS)


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
            # checked when a run is resolved, also in a run that leaves the observer out
            options=lazy("esper_antipatterns.detectors:DetectorConfig"),
        )
    ]


@hookimpl
def esper_add_commands(cli: click.Group) -> None:
    from esper_antipatterns.cli import antipatterns_command

    cli.add_command(antipatterns_command)
