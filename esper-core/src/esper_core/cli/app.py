"""State shared by the commands of one CLI invocation: plugins and the catalog, loaded once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import define, field

from esper_core.plugins.manager import LoadedPlugins, PluginSettings, load_plugins

if TYPE_CHECKING:  # the registries import every contract; `esper --help` needs none of them
    from esper_core.plugins.registry import Catalog


@define
class AppState:
    """Lazily loaded plugins and component catalog for one invocation (no module globals)."""

    settings: PluginSettings
    _plugins: LoadedPlugins | None = field(default=None, alias="_plugins")
    _catalog: Catalog | None = field(default=None, alias="_catalog")

    @property
    def plugins(self) -> LoadedPlugins:
        if self._plugins is None:
            self._plugins = load_plugins(self.settings)
        return self._plugins

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from esper_core.plugins.registry import build_catalog

            self._catalog = build_catalog(self.plugins)
        return self._catalog
