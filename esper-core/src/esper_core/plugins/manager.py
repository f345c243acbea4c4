"""Discovering and loading plugins from the ``esper`` entry-point group, and calling their hooks.

Loading rules (DESIGN §2, after pytest, httpie, conda and llm): each entry point is loaded on
its own, and one that fails to import, implements an unknown or ill-typed hook, or raises inside
a hook is recorded as a :class:`PluginFailure` and skipped, so the others keep working.
Strict mode turns any failure into a :class:`PluginError`. The core's built-in plugin is always
registered, exactly like a third-party one, so autoload switches never remove built-ins.

How hooks are called (:meth:`LoadedPlugins.call_each`): through pluggy, one plugin at a time.
``pm.hook.NAME()`` alone would stop at the first implementation that raises and would return the
results without saying which plugin gave each, so one broken plugin would take the others down
and the catalog could not name providers. Instead each plugin's implementations are called
through ``pm.subset_hook_caller`` holding that plugin only. Going through pluggy's hook caller
keeps what pluggy gives: ``@hookimpl(specname=...)``, implementations taking only some of the
hook's arguments, ``hookwrapper``/``wrapper`` implementations (each wraps its own plugin's call,
since plugins are called apart), call monitoring, and tracing (``ESPER_TRACE_HOOKS=1`` turns on
pluggy's tracer, written to stderr). Plugins are called in the order they load (core first, then
entry points by name, then in-process ones), with ``tryfirst`` implementations moved to the
front and ``trylast`` ones to the back as pluggy does. Pluggy itself calls untagged
implementations last-registered-first; Esper keeps load order there because the catalog's order
is the order of a run's gates, observers and reward terms, which must not depend on that detail.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import pluggy
from attrs import field, frozen

from esper_core import hookspecs
from esper_core.errors import ConfigError, PluginError
from esper_core.markers import ENTRY_POINT_GROUP, PROJECT_NAME
from esper_core.options import InvalidValue, name_list

if sys.version_info >= (3, 12):  # pragma: no cover
    from importlib import metadata as importlib_metadata
else:  # pragma: no cover
    import importlib_metadata

CORE_DISTRIBUTION = "esper-core"
BUILTIN_PLUGIN_NAME = "core"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@frozen(kw_only=True)
class PluginSettings:
    """How plugins are chosen: from the environment and the ``--strict-plugins`` flag."""

    autoload: bool = True
    allow: tuple[str, ...] | None = None
    strict: bool = False
    trace: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, strict: bool = False) -> PluginSettings:
        env = os.environ if environ is None else environ
        allow_raw = env.get("ESPER_PLUGINS", "")
        allow = None  # unset or blank: every installed plugin
        if allow_raw.strip():
            try:
                allow = name_list(allow_raw, noun="plugin name")
            except InvalidValue as exc:  # ',' or 'a,,b' would silently allow fewer plugins
                raise ConfigError(f"ESPER_PLUGINS={allow_raw!r} is invalid; expected {exc.expected}, "
                                  f"got {exc.got}") from None
        return cls(
            autoload=not _env_flag(env, "ESPER_DISABLE_PLUGIN_AUTOLOAD"),
            allow=allow,
            strict=strict or _env_flag(env, "ESPER_STRICT_PLUGINS"),
            trace=_env_flag(env, "ESPER_TRACE_HOOKS"),
        )


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    """An on/off environment variable; a value that is neither is refused, not read as off."""
    value = env.get(name, "").strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ConfigError(f"{name}={env[name]!r} is invalid; expected one of "
                      f"{', '.join(sorted(_TRUE))} (on) or {', '.join(sorted(_FALSE - {''}))} (off)")


@frozen(kw_only=True)
class PluginInfo:
    """A successfully registered plugin."""

    name: str
    distribution: str
    version: str
    module: str
    plugin: Any = field(eq=False, repr=False)

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version}"


@frozen(kw_only=True)
class PluginFailure:
    """A plugin that was skipped, and why."""

    name: str
    distribution: str
    version: str
    stage: str
    error: str

    def describe(self) -> str:
        return f"plugin {self.name!r} from {self.distribution} {self.version} failed ({self.stage}): {self.error}"


class LoadedPlugins:
    """The plugin manager plus what loaded and what failed."""

    def __init__(self, pm: pluggy.PluginManager, settings: PluginSettings) -> None:
        self.pm = pm
        self.settings = settings
        self.plugins: list[PluginInfo] = []
        self.failures: list[PluginFailure] = []

    def hooks_of(self, info: PluginInfo) -> list[str]:
        """The hooks ``info`` implements, by hook name (an implementation may use ``specname``)."""
        return sorted({caller.name for caller in self.pm.get_hookcallers(info.plugin) or ()})

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[PluginInfo, list[Any]]]:
        """Call every plugin's implementation of ``hook_name``, each plugin on its own.

        Returns each plugin that implements the hook with its non-``None`` results (one per
        implementation, usually one), in call order (see the module docstring). A plugin whose
        implementation raises is recorded as a failure, dropped, and left out.
        """
        caller = getattr(self.pm.hook, hook_name)
        order = {id(info.plugin): index for index, info in enumerate(self.plugins)}
        infos = {id(info.plugin): info for info in self.plugins}
        plain = [impl for impl in caller.get_hookimpls() if not (impl.hookwrapper or impl.wrapper)]
        plain.sort(key=lambda impl: (0 if impl.tryfirst else 2 if impl.trylast else 1, order[id(impl.plugin)]))
        # One call per plugin, at its first implementation's place: the rest come with it.
        called = {id(impl.plugin): infos[id(impl.plugin)] for impl in plain}
        out = []
        for info in called.values():
            results = self._call_one(info, hook_name, kwargs)
            if results is not None:
                out.append((info, results))
        return out

    def _call_one(self, info: PluginInfo, hook_name: str, kwargs: dict[str, Any]) -> list[Any] | None:
        """The results of one plugin's implementations of ``hook_name``, or None after recording
        its failure."""
        others = [p for p in self.pm.get_plugins() if p is not info.plugin]
        self._trace(f"{info.distribution}:{info.name}.{hook_name}()")
        try:
            return list(self.pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # as at import: a hook calling sys.exit() is contained
            self._trace(f"{info.distribution}:{info.name}.{hook_name}() failed:", _one_line(exc))
            self.fail(PluginFailure(name=info.name, distribution=info.distribution,
                                    version=info.version, stage=hook_name, error=_one_line(exc)),
                      info.plugin)
            return None

    def _trace(self, *message: object) -> None:
        # Through pluggy's tracer, so these lines interleave with its own and share its switch.
        self.pm.trace.root.get("plugin")(*message)

    def fail(self, failure: PluginFailure, plugin: object | None = None) -> None:
        """Record a failure; drop the plugin; raise at once in strict mode."""
        if plugin is not None and self.pm.is_registered(plugin):
            self.pm.unregister(plugin)
            self.plugins = [p for p in self.plugins if p.plugin is not plugin]
        # Not logged here: loading happens before the CLI configures logging; callers report.
        self.failures.append(failure)
        if self.settings.strict:
            raise PluginError(failure.describe())

    def register(self, plugin: ModuleType | object, *, name: str, distribution: str, version: str) -> None:
        module = getattr(plugin, "__name__", type(plugin).__name__)
        try:
            self.pm.register(plugin, name=f"{distribution}:{name}")
            # Any pending (unknown) hook now belongs to this plugin: earlier ones passed.
            self.pm.check_pending()
        except Exception as exc:  # pluggy raises PluginValidationError and ValueError
            self.fail(
                PluginFailure(name=name, distribution=distribution, version=version,
                              stage="register", error=_one_line(exc)),
                plugin,
            )
            return
        self.plugins.append(PluginInfo(name=name, distribution=distribution, version=version,
                                       module=module, plugin=plugin))


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: called sys.exit({exc.code!r})"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _distribution_of(ep: importlib_metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("unknown", "?")
    # One read of the metadata file for both fields (``dist.version`` would parse it again).
    metadata = dist.metadata
    return (metadata["Name"] or "unknown", metadata["Version"] or "?")


def _allowed(settings: PluginSettings, name: str, distribution: str) -> bool:
    if settings.allow is None:
        return settings.autoload
    return name in settings.allow or distribution in settings.allow


def esper_entry_points() -> list[tuple[importlib_metadata.EntryPoint, str, str]]:
    """Every entry point in the ``esper`` group with its distribution's name and version, in a
    deterministic order. Each distribution's metadata is read once, however many entry points
    it has: the reads are most of what listing plugins costs ``esper --help``."""
    described: dict[int, tuple[str, str]] = {}
    unique: dict[tuple[str, str, str], tuple[importlib_metadata.EntryPoint, str, str]] = {}
    for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
        # Entry points of one distribution share its object, which they keep alive meanwhile.
        key = id(getattr(ep, "dist", None))
        if key not in described:
            described[key] = _distribution_of(ep)
        distribution, version = described[key]
        unique[(ep.name, ep.value, distribution)] = (ep, distribution, version)
    return [unique[k] for k in sorted(unique)]


TRACE_PREFIX = "[esper hooks] "
TRACE_LINE_LIMIT = 200


def write_trace(text: str) -> None:
    """Write pluggy's trace to stderr, each line marked as a hook trace and cut to
    :data:`TRACE_LINE_LIMIT` characters (a register hook's result is its whole spec list).

    Not through logging: plugins load before the CLI configures it."""
    lines = []
    for line in text.splitlines():
        if len(line) > TRACE_LINE_LIMIT:
            line = line[: TRACE_LINE_LIMIT - 3] + "..."
        lines.append(f"{TRACE_PREFIX}{line}\n")
    sys.stderr.write("".join(lines))


def new_plugin_manager(*, trace: bool = False) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if trace:
        pm.trace.root.setwriter(write_trace)
        pm.enable_tracing()
    return pm


def load_plugins(
    settings: PluginSettings | None = None,
    *,
    extra: Iterable[tuple[str, object]] = (),
) -> LoadedPlugins:
    """Register the built-in plugin, then every allowed entry point, each on its own.

    ``extra`` registers in-process plugins (name, module) after the entry points, as tests and
    embedding applications do.
    """
    from esper_core import __version__
    from esper_core.builtin import plugin as builtin_plugin

    settings = settings or PluginSettings.from_env()
    loaded = LoadedPlugins(new_plugin_manager(trace=settings.trace), settings)
    loaded.register(builtin_plugin, name=BUILTIN_PLUGIN_NAME, distribution=CORE_DISTRIBUTION,
                    version=__version__)

    entry_points = esper_entry_points()
    for ep, distribution, version in entry_points:
        if distribution == CORE_DISTRIBUTION and ep.name == BUILTIN_PLUGIN_NAME:
            continue
        if not _allowed(settings, ep.name, distribution):
            continue
        try:
            plugin = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # sys.exit() or a BaseException at import is a failure too
            loaded.fail(PluginFailure(name=ep.name, distribution=distribution, version=version,
                                      stage="import", error=_one_line(exc)))
            continue
        loaded.register(plugin, name=ep.name, distribution=distribution, version=version)

    if settings.allow is not None:
        # A name in ESPER_PLUGINS that no entry point has would silently load nothing in its place.
        extra = list(extra)
        known = {BUILTIN_PLUGIN_NAME, CORE_DISTRIBUTION, *(name for name, _ in extra)}
        known.update(name for ep, distribution, _ in entry_points for name in (ep.name, distribution))
        unknown = [name for name in settings.allow if name not in known]
        if unknown:
            raise ConfigError(f"ESPER_PLUGINS names {', '.join(map(repr, unknown))}, which no installed plugin "
                              f"is; installed plugins and distributions: {', '.join(sorted(known))}")

    for name, plugin in extra:
        loaded.register(plugin, name=name, distribution=name, version="local")
    return loaded


def add_plugin_commands(loaded: LoadedPlugins, cli: Any) -> None:
    """Let each plugin add its sub-commands; a raising plugin is a recorded failure."""
    loaded.call_each("esper_add_commands", cli=cli)


def installed_versions() -> list[tuple[str, str]]:
    """(distribution, version) of esper-core and every distribution with an ``esper`` entry point."""
    found: dict[str, str] = {}
    for _, name, version in esper_entry_points():
        found[name] = version
    with contextlib.suppress(importlib_metadata.PackageNotFoundError):  # running from a checkout
        found.setdefault(CORE_DISTRIBUTION, importlib_metadata.version(CORE_DISTRIBUTION))
    return sorted(found.items())
