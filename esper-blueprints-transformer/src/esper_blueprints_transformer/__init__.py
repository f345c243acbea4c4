"""Esper transformer topology: GPT-style host, embedded text tasks and transformer blueprints."""

__version__ = "0.1.0"
