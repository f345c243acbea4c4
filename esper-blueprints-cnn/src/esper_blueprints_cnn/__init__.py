"""Esper CNN topology: host, image tasks (procedural shapes, CIFAR-10/100) and CNN blueprints."""

__version__ = "0.1.0"
