"""Telemetry sinks contributed by esper-telemetry: console, CSV, SQLite and TensorBoard.

Each module holds one sink and its attrs options class; the plugin registers them lazily, so
importing this package imports none of them.
"""
