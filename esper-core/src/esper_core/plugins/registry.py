"""Component registries built from the ``esper_register_*`` hooks.

:func:`build_catalog` calls every register hook of every plugin *one plugin at a time* (through
pluggy, see :mod:`esper_core.plugins.manager`), so a plugin whose hook raises or returns the
wrong type is dropped whole (and reported) without touching the others. Each registry keeps the
hook's call order. Two components with the same key are an error naming both distributions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

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
from esper_core.errors import ConfigError, PluginError, UnknownNameError
from esper_core.plugins.manager import LoadedPlugins, PluginFailure, PluginInfo

T = TypeVar("T")


class Registry(Generic[T]):
    """Named components of one kind, each remembering the plugin that provided it."""

    def __init__(self, kind: str, key: Callable[[T], str]) -> None:
        self.kind = kind
        self._key = key
        self._items: dict[str, tuple[T, PluginInfo]] = {}

    def add(self, spec: T, provider: PluginInfo) -> None:
        key = self._key(spec)
        if key in self._items:
            other = self._items[key][1]
            raise PluginError(
                f"duplicate {self.kind} {key!r}: provided by both {other.label} "
                f"and {provider.label}"
            )
        self._items[key] = (spec, provider)

    def get(self, key: str) -> T:
        """The component named ``key``; an unknown name lists the known ones."""
        try:
            return self._items[key][0]
        except KeyError:
            raise UnknownNameError(self.kind, key, self._items) from None

    def provider(self, key: str) -> PluginInfo:
        self.get(key)
        return self._items[key][1]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(spec for spec, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)


def _blueprint_order(spec: BlueprintSpec) -> tuple[int, int, str]:
    # Built-in catalog indices first, then third-party blueprints by key: deterministic.
    if spec.action_index is not None:
        return (0, spec.action_index, spec.key)
    return (1, 0, spec.key)


class BlueprintRegistry(Registry[BlueprintSpec]):
    def __init__(self) -> None:
        super().__init__("blueprint", lambda s: s.key)

    def topologies(self) -> list[str]:
        return sorted({s.topology for s in self})

    def for_topology(self, topology: str) -> list[BlueprintSpec]:
        """The catalog of one topology in action-index order."""
        return sorted((s for s in self if s.topology == topology), key=_blueprint_order)

    def resolve(self, name: str, topology: str) -> BlueprintSpec:
        """Look up ``name`` or ``topology:name`` for ``topology``."""
        key = name if ":" in name else f"{topology}:{name}"
        if key in self and self.get(key).topology != topology:
            raise ConfigError(f"blueprint {name!r} is a {self.get(key).topology} blueprint; this task's host "
                              f"takes {topology} blueprints (see `esper blueprints --topology {topology}`)")
        if key not in self:
            known = [s.name for s in self.for_topology(topology)]
            raise UnknownNameError(f"{topology} blueprint", name, known)
        return self.get(key)


_HOOKS: list[tuple[str, str, type]] = [
    ("esper_register_blueprints", "blueprints", BlueprintSpec),
    ("esper_register_tasks", "tasks", TaskSpec),
    ("esper_register_policies", "policies", PolicySpec),
    ("esper_register_gates", "gates", GateSpec),
    ("esper_register_reward_terms", "reward_terms", RewardTermSpec),
    ("esper_register_telemetry_sinks", "sinks", SinkSpec),
    ("esper_register_alpha_schedules", "alpha_schedules", AlphaScheduleSpec),
    ("esper_register_observers", "observers", ObserverSpec),
    ("esper_register_generators", "generators", GeneratorSpec),
    ("esper_register_topologies", "topologies", TopologySpec),
]


class Catalog:
    """Every registry, plus the plugin state it was built from."""

    def __init__(self, plugins: LoadedPlugins) -> None:
        self.plugins = plugins
        self.blueprints = BlueprintRegistry()
        self.tasks: Registry[TaskSpec] = Registry("task", lambda s: s.name)
        self.policies: Registry[PolicySpec] = Registry("policy", lambda s: s.name)
        self.gates: Registry[GateSpec] = Registry("gate", lambda s: s.name)
        self.reward_terms: Registry[RewardTermSpec] = Registry("reward term", lambda s: s.name)
        self.sinks: Registry[SinkSpec] = Registry("telemetry sink", lambda s: s.name)
        self.alpha_schedules: Registry[AlphaScheduleSpec] = Registry("alpha schedule", lambda s: s.name)
        self.observers: Registry[ObserverSpec] = Registry("observer", lambda s: s.name)
        self.generators: Registry[GeneratorSpec] = Registry("blueprint generator", lambda s: s.name)
        self.topologies: Registry[TopologySpec] = Registry("topology", lambda s: s.name)
        #: plugin name -> {registry attribute -> [component keys]}
        self.contributions: dict[str, dict[str, list[str]]] = {}

    @property
    def failures(self) -> list[PluginFailure]:
        return self.plugins.failures

    def registry(self, attribute: str) -> Registry[Any]:
        return getattr(self, attribute)


def _specs(loaded: LoadedPlugins, info: PluginInfo, hook_name: str, spec_type: type,
           results: list[Any]) -> list[Any] | None:
    """One plugin's specs from its results for ``hook_name``; None (after recording why, which
    drops the plugin) if any result is not a list of ``spec_type``."""
    specs: list[Any] = []
    for result in results:
        if not isinstance(result, list | tuple) or not all(isinstance(r, spec_type) for r in result):
            loaded.fail(PluginFailure(
                name=info.name, distribution=info.distribution, version=info.version,
                stage=hook_name,
                error=f"must return a list of {spec_type.__name__}, got {_describe(result)}",
            ), info.plugin)
            return None
        specs.extend(result)
    return specs


def _describe(value: object) -> str:
    if isinstance(value, list | tuple):
        kinds = sorted({type(v).__name__ for v in value})
        return f"{type(value).__name__} of {', '.join(kinds) or 'nothing'}"
    return type(value).__name__


def build_catalog(loaded: LoadedPlugins) -> Catalog:
    """Build every registry from the loaded plugins (duplicates raise :class:`PluginError`)."""
    catalog = Catalog(loaded)
    # Every hook is called before anything is added: a plugin failing a later hook is dropped
    # whole, taking back what its earlier hooks returned.
    gathered: list[tuple[str, PluginInfo, list[Any]]] = []
    for hook_name, attribute, spec_type in _HOOKS:
        for info, results in loaded.call_each(hook_name):
            specs = _specs(loaded, info, hook_name, spec_type, results)
            if specs is not None and results:
                gathered.append((attribute, info, specs))
    alive = {id(info.plugin) for info in loaded.plugins}
    catalog.contributions = {info.name: {} for info in loaded.plugins}
    for attribute, info, specs in gathered:
        if id(info.plugin) not in alive:
            continue
        registry = catalog.registry(attribute)
        for spec in specs:
            registry.add(spec, info)
        catalog.contributions[info.name][attribute] = [registry._key(s) for s in specs]
    return catalog
