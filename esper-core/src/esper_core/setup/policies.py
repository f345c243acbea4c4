"""The controller an episode consults, built from a resolved run and a policy name."""

from __future__ import annotations

from typing import Any

from esper_core.contracts.protocols import PolicyContext
from esper_core.plugins.registry import Catalog
from esper_core.setup.resolve import ResolvedRun


def policy_context(resolved: ResolvedRun, slot_names: tuple[str, ...], options: dict[str, Any]) -> PolicyContext:
    return PolicyContext(
        slot_names=slot_names,
        blueprint_keys=resolved.blueprint_keys,
        topology=resolved.task.topology,
        max_epochs=resolved.epochs,
        seed=resolved.config.seed,
        options=options,
    )


def make_policy(resolved: ResolvedRun, name: str, catalog: Catalog, slot_names: tuple[str, ...],
                options: dict[str, Any]) -> Any:
    """Build policy ``name`` for the episodes of ``resolved``."""
    return catalog.policies.get(name).factory(context=policy_context(resolved, slot_names, options))
