"""The installed plugins' catalog, for discovery code used outside a command (a Crucible given
no curriculum, a blueprint library read on its own): what topologies exist and how they lay out
their slots is declared by the plugins that provide them (``TopologySpec``), never by core."""

from __future__ import annotations

import functools

from esper_core.plugins.manager import PluginSettings, load_plugins
from esper_core.plugins.registry import Catalog, build_catalog


@functools.cache
def installed_catalog() -> Catalog:
    """Built once per process from the installed entry points (``ESPER_*`` settings apply)."""
    return build_catalog(load_plugins(PluginSettings.from_env()))
