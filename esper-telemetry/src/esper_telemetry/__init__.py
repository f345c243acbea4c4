"""Esper telemetry: sinks (console, CSV, SQLite, TensorBoard), gradient health, run queries and reports."""

__version__ = "0.1.0"
