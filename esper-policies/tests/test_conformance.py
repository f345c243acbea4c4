"""The esper-core conformance kit, run against each policy this distribution registers."""

from esper_core.testing import PolicyConformance
from esper_policies.plugin import esper_register_policies

SPECS = {spec.name: spec for spec in esper_register_policies()}


class TestHeuristicConformance(PolicyConformance):
    spec = SPECS["heuristic"]


class TestRandomConformance(PolicyConformance):
    spec = SPECS["random"]


class TestNoopConformance(PolicyConformance):
    spec = SPECS["noop"]
