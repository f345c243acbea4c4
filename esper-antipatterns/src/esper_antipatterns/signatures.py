"""Failure signatures and the reward penalty each one earns (seed 000, "Reward Signal Design").

Torch-free: the reward terms and the detectors share these names, and the names are what an
:class:`~esper_core.contracts.events.Anomaly` carries in its ``signature`` field.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
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


#: A signature is an anti-pattern's measured one when at least this share of the seeds it was
#: run with showed it (2 of 3): one seed can be luck, and a failure that needs a lucky seed is
#: not one the catalog should promise.
CONSENSUS_SHARE = 2 / 3


def consensus(per_seed: Sequence[Iterable[str]], designed: str) -> str | None:
    """The signature a multi-seed measurement shows, from each seed's detected signatures.

    A signature counts when it appeared in at least :data:`CONSENSUS_SHARE` of the seeds. The
    designed signature wins when it counts; otherwise the counting signature with the largest
    penalty (the most severe), ties in :class:`Signature` order; None when none counts.
    """
    if not per_seed:
        raise ValueError("a consensus needs at least one seed")
    seen = [set(detected) for detected in per_seed]
    counting = [sig for sig in Signature
                if sum(sig.value in s for s in seen) >= CONSENSUS_SHARE * len(seen) - 1e-9]
    if not counting:
        return None
    if any(sig.value == designed for sig in counting):
        return designed
    return min(counting, key=lambda sig: (PENALTIES[sig], list(Signature).index(sig))).value
