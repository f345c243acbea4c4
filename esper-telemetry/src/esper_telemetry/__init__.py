"""Esper telemetry: sinks, gradient health, run queries and reports.

Importing the package is cheap: it exposes the hub only. Sinks live in
:mod:`esper_telemetry.sinks`, the gradient-health tracker (torch) in
:mod:`esper_telemetry.gradient_health`, the run queries in :mod:`esper_telemetry.queries` and
the report (matplotlib) in :mod:`esper_telemetry.report`.
"""

from esper_core.sdk import TelemetryHub

__version__ = "0.1.0"

__all__ = ["TelemetryHub", "__version__"]
