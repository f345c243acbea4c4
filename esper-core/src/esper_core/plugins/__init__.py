"""Plugin discovery and the component registries built from the hooks.

The names load on first use (PEP 562): ``esper --help`` needs the manager's entry-point listing,
not the registries and the contracts they import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esper_core.plugins.manager import PluginFailure, PluginInfo, PluginSettings, load_plugins
    from esper_core.plugins.registry import Catalog, Registry, build_catalog

_HOMES = {
    "PluginFailure": "manager", "PluginInfo": "manager", "PluginSettings": "manager", "load_plugins": "manager",
    "Catalog": "registry", "Registry": "registry", "build_catalog": "registry",
}

__all__ = ["Catalog", "PluginFailure", "PluginInfo", "PluginSettings", "Registry", "build_catalog", "load_plugins"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
