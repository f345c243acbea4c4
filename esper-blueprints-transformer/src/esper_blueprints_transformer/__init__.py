"""Esper transformer topology: GPT-style host, embedded text tasks and transformer blueprints.

Torch-free at import (the plugin module imports this package); the torch-backed parts are
:mod:`.host`, :mod:`.blueprints` and :mod:`.tasks.text`.
"""

from esper_blueprints_transformer.defaults import TRANSFORMER_DEFAULTS

__version__ = "0.1.0"
__all__ = ["TRANSFORMER_DEFAULTS", "__version__"]
