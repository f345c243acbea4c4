"""Language-model report metrics derived from the mean cross-entropy (nats per token).

With the byte-level vocabulary of these tasks a token is a byte, so "bits per character" is
bits per byte; for ASCII text the two are the same.
"""

from __future__ import annotations

import math
from collections import Counter


def perplexity(loss: float) -> float:
    """exp(loss): the effective number of equally likely next tokens (inf past float range)."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def bits_per_char(loss: float) -> float:
    """loss / ln 2: the code length per token in bits."""
    return loss / math.log(2)


def loss_metrics(loss: float) -> dict[str, float]:
    """What a text task reports beside its mean cross-entropy ``loss`` (nats per byte)."""
    return {"perplexity": perplexity(loss), "bits_per_byte": bits_per_char(loss)}


def unigram_cross_entropy(train: bytes, val: bytes, *, vocab_size: int = 256) -> float:
    """Cross-entropy (nats/token) on ``val`` of the add-one-smoothed byte frequencies of ``train``.

    The baseline a model must beat to show it learned anything beyond symbol frequencies.
    """
    if not val:
        raise ValueError("validation text is empty")
    counts = Counter(train)
    total = len(train) + vocab_size
    log_p = {b: math.log((counts.get(b, 0) + 1) / total) for b in set(val)}
    return -sum(log_p[b] * n for b, n in Counter(val).items()) / len(val)
