"""Esper anti-pattern blueprints: ten deliberately bad seed modules, their failure detectors and penalties.

Torch-free at import. The seed modules live in :mod:`esper_antipatterns.blueprints`; the
curriculum API in :mod:`esper_antipatterns.curriculum`.
"""

from esper_antipatterns.catalog import ANTIPATTERNS, Antipattern, Category, Severity
from esper_antipatterns.detectors import DetectorConfig, FailureDetector, SeedObservation
from esper_antipatterns.signatures import PENALTIES, Signature

__version__ = "0.1.0"

__all__ = [
    "ANTIPATTERNS",
    "PENALTIES",
    "Antipattern",
    "Category",
    "DetectorConfig",
    "FailureDetector",
    "SeedObservation",
    "Severity",
    "Signature",
    "__version__",
]
