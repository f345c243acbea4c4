"""A run's configuration as it acts: every component's options table read into the value of
each option, defaults filled in.

A run records the options a user set, not the defaults its components applied: ``config.toml``'s
``[task]`` holds ``batch_size`` and whatever ``--task-option`` gave, and ``[policy]`` only the
policy options given. Compared as written, ``--task-option train_size=8000`` on the resume of a
``micro`` run reads as a change from "not set", though 8000 is ``micro``'s default and so the
value the run used. Where a component declares how it reads its table
(:attr:`TaskSpec.read_options`, :attr:`PolicySpec.read_options`, a sink's or an observer's
``options`` class), both records are read the same way before they are compared, so a resume,
a run checkpoint and a continued ``esper collect`` dataset refuse only what changes the run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from esper_core.errors import ConfigError, PluginError
from esper_core.options import parse_options
from esper_core.plugins.blame import blame, module_of, origin
from esper_core.setup.resolve import ResolvedRun, declared_options_class


def effective_config(config: Mapping[str, Any], resolved: ResolvedRun, *, recorded: bool) -> dict[str, Any]:
    """``config`` (a run's tables, as ``config.toml`` holds them) with the ``[task]``,
    ``[policy]``, ``[telemetry.<sink>]`` and ``[observers.<name>]`` tables of ``resolved``'s
    components replaced by every option's value, defaults filled in and unset (``None``) values
    left out.

    A table is read only when ``config`` names the same component as ``resolved`` (a record of
    another task keeps its own table, and differs in ``[run] task`` anyway). With ``recorded``
    (a record written by an earlier run), a table its component no longer reads stays as
    written, so the comparison names the option that differs; the current configuration's
    tables must read, and a bad one raises the component's own ``ConfigError``."""
    out = dict(config)
    run = config.get("run")
    names = run if isinstance(run, Mapping) else {}
    components: tuple[tuple[str, str, Any, Any], ...] = (
        ("task", "task", resolved.task, resolved.task.read_options),
        ("policy", "policy", resolved.policy, resolved.policy.read_options),
    )
    for table, kind, spec, reader in components:
        given = config.get(table, {})  # a missing table is one that sets nothing
        if reader is not None and names.get(table) == spec.name and isinstance(given, Mapping):
            out[table] = _read(given, kind, spec.name, reader, module_of(reader), recorded=recorded)
    nested: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
        ("telemetry", "telemetry sink", resolved.sinks), ("observers", "observer", resolved.observers))
    for table, kind, specs in nested:
        tables = config.get(table, {})
        if not isinstance(tables, Mapping):
            continue
        read = dict(tables)
        for spec in specs:  # the run's own components
            declared = declared_options_class(spec, kind)
            if declared is not None and isinstance(tables.get(spec.name, {}), Mapping):
                reader = functools.partial(_parse, declared, owner=f"{kind} {spec.name!r}")
                read[spec.name] = _read(tables.get(spec.name, {}), kind, spec.name, reader, module_of(spec.options),
                                        recorded=recorded)
        out[table] = read
    return out


def _parse(cls: type, *, options: Mapping[str, Any], owner: str) -> Any:
    return parse_options(cls, options, owner=owner)


def _read(table: Mapping[str, Any], kind: str, name: str, reader: Callable[..., Any], module: str, *,
          recorded: bool) -> Any:
    try:
        with blame(kind, name, module, "reading its options"):
            value = reader(options=dict(table))
    except ConfigError:
        if recorded:
            return table
        raise
    return plain_options(value, owner=f"{kind} {name!r} (from {origin(module)})")


def plain_options(value: Any, *, owner: str) -> dict[str, Any]:
    """An options record as comparable plain data: an attrs instance or a mapping, tuples as
    lists (as TOML and JSON give them back), ``None`` (unset) left out."""
    if attrs.has(type(value)):
        data = {k: _plain(v) for k, v in attrs.asdict(value).items()}
    elif isinstance(value, Mapping):
        data = {k: _plain(v) for k, v in value.items()}
    else:
        raise PluginError(f"{owner}: its read_options returned {type(value).__name__}, not an attrs instance or "
                          "a mapping of option values")
    return {k: v for k, v in data.items() if v is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
