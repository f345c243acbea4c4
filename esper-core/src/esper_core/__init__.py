"""Esper core: grow neural networks while they train.

Importing this package is cheap (no torch): it exposes the version, the ``hookimpl`` marker
plugins decorate their hooks with, and the error types. What else a plugin may use is in
:mod:`esper_core.sdk` (see ``docs/writing-plugins.md``, "What a plugin may import").
"""

from esper_core.errors import ConfigError, EsperError, PluginError, UnknownNameError
from esper_core.lazy import lazy
from esper_core.markers import hookimpl

__version__ = "0.1.0"

__all__ = ["ConfigError", "EsperError", "PluginError", "UnknownNameError", "__version__", "hookimpl", "lazy"]
