"""Conformance kits for plugin authors.

Subclass a base class in your plugin's tests, set one attribute (or override one method), and
pytest runs the checks every Esper component of that kind must pass::

    from esper_core.testing import BlueprintConformance
    from my_plugin.plugin import esper_register_blueprints

    class TestMyBlueprint(BlueprintConformance):
        spec = esper_register_blueprints()[0]
"""

from esper_core.testing.conformance import (
    BlueprintConformance,
    PolicyConformance,
    RewardTermConformance,
    SinkConformance,
    sample_event_stream,
    sample_reports,
)

__all__ = [
    "BlueprintConformance",
    "PolicyConformance",
    "RewardTermConformance",
    "SinkConformance",
    "sample_event_stream",
    "sample_reports",
]
