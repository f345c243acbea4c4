"""Failure signatures and the reward penalty each one earns (seed 000, "Reward Signal Design").

Torch-free: the reward terms and the detectors share these names, and the names are what an
:class:`~esper_core.contracts.events.Anomaly` carries in its ``signature`` field.
"""

from __future__ import annotations

import enum
from types import MappingProxyType


class Signature(enum.StrEnum):
    """A characteristic way a seed fails."""

    NAN_INF = "nan_inf"
    GRADIENT_COLLAPSE = "gradient_collapse"
    GRADIENT_EXPLOSION = "gradient_explosion"
    PLATEAU = "plateau"
    COST_WITHOUT_BENEFIT = "cost_without_benefit"


#: The anomaly signature of an anti-pattern seed whose life ended without its catalogued
#: signature (not a failure of the seed, so not a :class:`Signature` and never priced).
SIGNATURE_MISMATCH = "signature_mismatch"


#: Unweighted reward per occurrence of each signature (seed 000's table; DESIGN §7).
PENALTIES: MappingProxyType[Signature, float] = MappingProxyType({
    Signature.NAN_INF: -100.0,
    Signature.GRADIENT_COLLAPSE: -10.0,
    Signature.GRADIENT_EXPLOSION: -10.0,
    Signature.PLATEAU: -5.0,
    Signature.COST_WITHOUT_BENEFIT: -1.0,
})
