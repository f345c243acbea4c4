"""Esper anti-pattern blueprints: ten deliberately bad seed modules, their failure detectors and penalties."""

__version__ = "0.1.0"
