"""Resolving a :class:`RunConfig` against the installed catalog and the task's defaults.

Everything a run needs is looked up here, before any training starts, so that every unknown
name or bad value fails fast with a message naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from esper_core.config import RunConfig, build_section
from esper_core.contracts.run_defaults import RunDefaults, TrainingSettings
from esper_core.contracts.settings import GateThresholds, LifecycleSettings
from esper_core.contracts.specs import BlueprintSpec, GateSpec, ObserverSpec, PolicySpec, SinkSpec, TaskSpec
from esper_core.errors import ConfigError, PluginError, UnknownNameError
from esper_core.lazy import LazyCallable
from esper_core.options import parse_options
from esper_core.plugins.blame import blame, module_of, origin
from esper_core.plugins.registry import Catalog
from esper_core.rewards.function import RewardFunction
from esper_core.setup.defaults import default_policy, default_task


@frozen(kw_only=True)
class ResolvedRun:
    """A fully resolved run: specs looked up, defaults applied, values validated."""

    config: RunConfig
    task: TaskSpec
    policy: PolicySpec
    epochs: int
    #: most live seeds at once (the config's, else the task's default, else 1)
    max_seeds: int
    slots: tuple[str, ...] | None
    blueprints: tuple[BlueprintSpec, ...]
    training: TrainingSettings
    lifecycle: LifecycleSettings
    thresholds: GateThresholds
    gate_specs: tuple[GateSpec, ...]
    alpha_schedules: Mapping[str, Callable[..., Any]]
    reward: RewardFunction
    sinks: tuple[SinkSpec, ...]
    observers: tuple[ObserverSpec, ...]
    task_options: Mapping[str, Any]

    @property
    def blueprint_keys(self) -> tuple[str, ...]:
        return tuple(b.key for b in self.blueprints)

    def to_toml_dict(self) -> dict[str, dict[str, Any]]:
        """The fully resolved configuration, in the same tables as a config file."""
        data = self.config.to_dict()
        data["run"].update({
            "task": self.task.name,
            "policy": self.policy.name,
            "epochs": self.epochs,
            "max_seeds": self.max_seeds,
            "blueprints": [b.name for b in self.blueprints],
        })
        if self.slots is not None:
            data["run"]["slots"] = list(self.slots)
        data["training"] = attrs.asdict(self.training)
        data["task"] = dict(self.task_options)
        data["kasmina"] = attrs.asdict(self.lifecycle)
        data["gates"] = attrs.asdict(self.thresholds)
        data["rewards"] = dict(self.reward.weights)
        data["run"]["observers"] = [o.name for o in self.observers]
        return data


def run_settings(config: RunConfig, task: TaskSpec) -> RunDefaults:
    """The run's settings: each the config's value if given, else the task's default (which is
    the :class:`RunDefaults` record's own where the task declared none)."""
    given = {"epochs": config.epochs, "max_seeds": config.max_seeds, "slots": config.slots,
             "blueprints": config.blueprints, **attrs.asdict(config.training)}
    return task.defaults.with_overrides(given)


def _blueprints(names: tuple[str, ...], task: TaskSpec, catalog: Catalog) -> tuple[BlueprintSpec, ...]:
    if not names:
        specs = [s for s in catalog.blueprints.for_topology(task.topology) if not s.is_antipattern]
    else:
        specs = [catalog.blueprints.resolve(n, task.topology) for n in names]
    if not specs:
        raise ConfigError(f"no blueprints are available for topology {task.topology!r}")
    first: dict[str, str] = {}
    for name, spec in zip(names, specs, strict=False):
        if spec.key in first:  # an action the policy could take two ways, counted twice by uniform ones
            also = "" if first[spec.key] == name else f" (as {first[spec.key]!r} and {name!r})"
            raise ConfigError(f"[run] blueprints names {spec.key if also else name!r} twice{also}")
        first[spec.key] = name
    return tuple(specs)


def register_library(path: str, topology: str, catalog: Catalog) -> None:
    """Add the blueprints of library file ``path`` to ``catalog`` for ``topology``.

    They carry no action index, so they follow the built-in catalog in key order. A name that
    is already taken by another provider is an error naming both; registering the same file
    twice (a resumed run, or several runs in one process) adds nothing."""
    from esper_core.discovery.library import LibraryError, library_blueprints, read_library
    from esper_core.plugins.manager import PluginInfo

    library = read_library(Path(path))
    if library.topology != topology:
        raise LibraryError(f"blueprint library {path!r} holds {library.topology!r} blueprints; the task's "
                           f"topology is {topology!r}")
    provider = PluginInfo(name="blueprint-library", distribution=f"blueprint library {path}", version="v1",
                          module="esper_core.discovery.library", plugin=None)
    for spec in library_blueprints(library, source=path):
        if spec.key in catalog.blueprints and catalog.blueprints.get(spec.key).tokens == spec.tokens \
                and catalog.blueprints.provider(spec.key).distribution == provider.distribution:
            continue
        catalog.blueprints.add(spec, provider)


def _check_component_tables(config: RunConfig, catalog: Catalog) -> None:
    """Every ``[telemetry.<name>]`` and ``[observers.<name>]`` table must name an installed
    component, and hold options it declares (``SinkSpec.options``, ``ObserverSpec.options``): a
    misspelt table or key would otherwise be ignored. A table for an installed component this
    run leaves out is kept (evaluation and ``esper collect`` run a config with its sinks switched
    off), and checked all the same, so the typo is found now, not when the sink is next enabled."""
    tables: tuple[tuple[str, str, Mapping[str, Mapping[str, Any]], Any], ...] = (
        ("telemetry", "telemetry sink", config.telemetry_options, catalog.sinks),
        ("observers", "observer", config.observer_options, catalog.observers))
    for table, kind, given, registry in tables:
        for name, options in given.items():
            try:
                spec = registry.get(name)
            except UnknownNameError as exc:
                raise ConfigError(f"[{table}.{name}]: {exc}") from None
            declared = declared_options_class(spec, kind)
            if declared is not None:
                parse_options(declared, options, owner=f"{kind} {name!r}")


def declared_options_class(spec: SinkSpec | ObserverSpec, kind: str) -> type | None:
    """The attrs class a sink or an observer parses its options table into (imported where
    declared lazily); None where it declares none."""
    declared = spec.options
    if isinstance(declared, LazyCallable):
        with blame(kind, spec.name, module_of(declared), "importing its options class"):
            declared = declared.resolve()
        if not (isinstance(declared, type) and attrs.has(declared)):
            raise PluginError(f"{kind} {spec.name!r} (from {origin(module_of(spec.options))}) declares "
                              f"options {spec.options!r}, which is not an attrs class")
    return declared


def resolve_run(config: RunConfig, catalog: Catalog) -> ResolvedRun:
    """Look up every name in ``config`` and apply the task's defaults."""
    task = catalog.tasks.get(config.task) if config.task is not None else default_task(catalog)
    if config.blueprint_library is not None:
        register_library(config.blueprint_library, task.topology, catalog)
    policy = catalog.policies.get(config.policy) if config.policy is not None else default_policy(catalog)
    if "checkpoint" in config.policy_options and not policy.learned:
        # --policy-checkpoint becomes [policy] checkpoint: say so, not "unknown option 'checkpoint'"
        learned = ", ".join(sorted(spec.name for spec in catalog.policies if spec.learned)) or "none installed"
        raise ConfigError(f"--policy-checkpoint needs a learned policy; policy {policy.name!r} is not one "
                          f"(learned policies: {learned})")
    settings = run_settings(config, task)
    training = settings.training
    lifecycle = build_section(LifecycleSettings, config.kasmina, "kasmina", base=task.kasmina.lifecycle)
    thresholds = build_section(GateThresholds, config.gates, "gates", base=task.kasmina.gates)
    schedules = {s.name: s.factory for s in catalog.alpha_schedules}
    catalog.alpha_schedules.get(lifecycle.alpha_schedule)  # unknown schedule → error listing known
    reward = RewardFunction(catalog.reward_terms, preset=config.reward_preset, weights=config.reward_weights)
    sinks = tuple(catalog.sinks.get(name) for name in config.telemetry)
    observers = (tuple(catalog.observers) if config.observers is None
                 else tuple(catalog.observers.get(name) for name in config.observers))
    _check_component_tables(config, catalog)
    task_options = {"batch_size": training.batch_size, **config.task_options}
    return ResolvedRun(
        config=config,
        task=task,
        policy=policy,
        epochs=settings.epochs,
        max_seeds=settings.max_seeds,
        slots=settings.slots,
        blueprints=_blueprints(settings.blueprints, task, catalog),
        training=training,
        lifecycle=lifecycle,
        thresholds=thresholds,
        gate_specs=tuple(catalog.gates),
        alpha_schedules=schedules,
        reward=reward,
        sinks=sinks,
        observers=observers,
        task_options=task_options,
    )
