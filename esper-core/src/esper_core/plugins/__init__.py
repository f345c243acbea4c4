"""Plugin discovery and the component registries built from the hooks."""

from esper_core.plugins.manager import PluginFailure, PluginInfo, PluginSettings, load_plugins
from esper_core.plugins.registry import Catalog, Registry, build_catalog

__all__ = [
    "Catalog",
    "PluginFailure",
    "PluginInfo",
    "PluginSettings",
    "Registry",
    "build_catalog",
    "load_plugins",
]
