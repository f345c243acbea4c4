"""Esper Tamiyo policies: heuristic, random, noop, PPO and IQL controllers, and the Architect."""

__version__ = "0.1.0"
