"""Discovering and loading plugins from the ``esper`` entry-point group.

Loading rules (DESIGN §2, after pytest, httpie, conda and llm): each entry point is loaded on
its own, and one that fails to import, implements an unknown or ill-typed hook, or raises inside
a hook is recorded as a :class:`PluginFailure` and skipped, so the others keep working.
Strict mode turns any failure into a :class:`PluginError`. The core's built-in plugin is always
registered, exactly like a third-party one, so autoload switches never remove built-ins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import pluggy
from attrs import field, frozen

from esper_core import hookspecs
from esper_core.errors import PluginError
from esper_core.markers import ENTRY_POINT_GROUP, PROJECT_NAME

if sys.version_info >= (3, 12):  # pragma: no cover
    from importlib import metadata as importlib_metadata
else:  # pragma: no cover
    import importlib_metadata

CORE_DISTRIBUTION = "esper-core"
BUILTIN_PLUGIN_NAME = "core"
_TRUE = {"1", "true", "yes", "on"}


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
        allow_raw = env.get("ESPER_PLUGINS", "").strip()
        allow = tuple(a.strip() for a in allow_raw.split(",") if a.strip()) if allow_raw else None
        return cls(
            autoload=env.get("ESPER_DISABLE_PLUGIN_AUTOLOAD", "").lower() not in _TRUE,
            allow=allow,
            strict=strict or env.get("ESPER_STRICT_PLUGINS", "").lower() in _TRUE,
            trace=env.get("ESPER_TRACE_HOOKS", "").lower() in _TRUE,
        )


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
        return sorted(
            impl_name
            for impl_name in dir(info.plugin)
            if impl_name.startswith("esper_") and self.pm.parse_hookimpl_opts(info.plugin, impl_name)
        )

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


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
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
    loaded = LoadedPlugins(new_plugin_manager(), settings)
    loaded.register(builtin_plugin, name=BUILTIN_PLUGIN_NAME, distribution=CORE_DISTRIBUTION,
                    version=__version__)

    for ep, distribution, version in esper_entry_points():
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

    for name, plugin in extra:
        loaded.register(plugin, name=name, distribution=name, version="local")
    return loaded


_FAILED = object()


def call_plugin_hook(loaded: LoadedPlugins, info: PluginInfo, hook_name: str, **kwargs: Any) -> Any:
    """Call one plugin's implementation of ``hook_name`` on its own.

    Returns the hook's result, ``None`` when the plugin does not implement it, or
    :data:`_FAILED` after recording the failure (the plugin is dropped). Calls are traced to
    stderr with ``ESPER_TRACE_HOOKS=1``.
    """
    function = getattr(info.plugin, hook_name, None)
    if function is None or not loaded.pm.parse_hookimpl_opts(info.plugin, hook_name):
        return None
    if loaded.settings.trace:
        sys.stderr.write(f"[esper hooks] {info.distribution}:{info.name}.{hook_name}()\n")
    try:
        return function(**kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # as at import: a hook calling sys.exit() is contained
        loaded.fail(PluginFailure(name=info.name, distribution=info.distribution,
                                  version=info.version, stage=hook_name, error=_one_line(exc)),
                    info.plugin)
        return _FAILED


def add_plugin_commands(loaded: LoadedPlugins, cli: Any) -> None:
    """Let each plugin add its sub-commands; a raising plugin is a recorded failure."""
    for info in list(loaded.plugins):
        call_plugin_hook(loaded, info, "esper_add_commands", cli=cli)


def installed_versions() -> list[tuple[str, str]]:
    """(distribution, version) of esper-core and every distribution with an ``esper`` entry point."""
    found: dict[str, str] = {}
    for _, name, version in esper_entry_points():
        found[name] = version
    try:
        found.setdefault(CORE_DISTRIBUTION, importlib_metadata.version(CORE_DISTRIBUTION))
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        pass
    return sorted(found.items())
