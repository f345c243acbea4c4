"""What a run uses when the user names nothing: the components installed plugins declare as
defaults (``TaskSpec.is_default``, ``PolicySpec.roles``). Core names none of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from esper_core.contracts.specs import PolicySpec, TaskSpec
from esper_core.errors import ConfigError
from esper_core.plugins.registry import Catalog, Registry

T = TypeVar("T", TaskSpec, PolicySpec)


def default_task(catalog: Catalog) -> TaskSpec:
    """The installed task declared the default (``esper run`` without ``--task``)."""
    return _only(catalog.tasks, lambda spec: spec.is_default, what="default task", flag="--task NAME",
                 hint="pip install esper-blueprints-cnn (its shapes task)")


def default_policy(catalog: Catalog) -> PolicySpec:
    """The installed policy in the ``default`` role (``esper run`` without ``--policy``)."""
    return _only(catalog.policies, lambda spec: "default" in spec.roles, what="default policy",
                 flag="--policy NAME", hint="pip install esper-policies (its heuristic policy)")


def baseline_policy(catalog: Catalog) -> PolicySpec:
    """The installed policy in the ``baseline`` role: the no-growth controller a run is compared with."""
    return _only(catalog.policies, lambda spec: "baseline" in spec.roles, what="baseline policy",
                 flag="--no-compare-baseline", hint="pip install esper-policies (its noop policy)")


def comparison_policies(catalog: Catalog) -> tuple[str, ...]:
    """The policies ``esper evaluate`` compares a trained one with, unless ``--against`` names others."""
    names = tuple(spec.name for spec in catalog.policies if "comparison" in spec.roles)
    if not names:
        raise ConfigError("no installed policy is declared for comparison; name some with --against "
                          "(or pip install esper-policies)")
    return names


def _only(registry: Registry[T], chosen: Callable[[T], bool], *, what: str, flag: str, hint: str) -> T:
    found = [spec for spec in registry if chosen(spec)]
    if not found:
        names = ", ".join(registry.names()) or "none"
        raise ConfigError(f"no installed plugin declares a {what}; {hint}, or pass {flag} "
                          f"(installed: {names})")
    if len(found) > 1:
        owners = " and ".join(f"{spec.name!r} (from {registry.provider(spec.name).distribution})"
                              for spec in found)
        raise ConfigError(f"two installed plugins declare the {what}: {owners}; pass {flag} "
                          "or uninstall one")
    return found[0]
