"""Esper CNN topology: host, image tasks (procedural shapes, CIFAR-10/100) and CNN blueprints.

Importing this package does not import torch: ``CNNHost`` and ``HostConfig`` load on first
access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esper_blueprints_cnn.defaults import CNN_DEFAULTS

if TYPE_CHECKING:
    from esper_blueprints_cnn.host import CNNHost, HostConfig

__version__ = "0.1.0"
__all__ = ["CNN_DEFAULTS", "CNNHost", "HostConfig", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("CNNHost", "HostConfig"):
        from esper_blueprints_cnn import host

        return getattr(host, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
