"""Esper Tamiyo policies: heuristic, random, noop, PPO and IQL controllers, and the Architect.

Importing the package is cheap: the public names below load their module on first access
(PEP 562), so the plugin entry point never drags in policy code, let alone torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BlueprintPick": "esper_policies.rotation",
    "BlueprintRotation": "esper_policies.rotation",
    "CullEvent": "esper_policies.tracker",
    "DecisionRecord": "esper_policies.heuristic",
    "HeuristicConfig": "esper_policies.heuristic_config",
    "HeuristicPolicy": "esper_policies.heuristic",
    "NoopPolicy": "esper_policies.noop",
    "RandomPolicy": "esper_policies.random_policy",
    "SignalTracker": "esper_policies.tracker",
    "SlotSignals": "esper_policies.tracker",
    "TrackerConfig": "esper_policies.tracker",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'esper_policies' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
