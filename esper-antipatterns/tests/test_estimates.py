from __future__ import annotations

import pytest

from esper_antipatterns import estimates
from esper_antipatterns.catalog import ANTIPATTERNS, get


def test_closed_forms() -> None:
    c = 32
    assert estimates.correlated_noise(c) == 33
    assert estimates.asymmetric_bottleneck(c) == 2 * 32 * 4 + 4 + 32 + 32
    assert estimates.momentum_dampener(c) == 32
    assert estimates.sigmoid_sandwich(c) == 32 * 32 + 64
    assert estimates.gain_amplifier(c) == 33
    assert estimates.deep_linear_stack(c) == 8 * 32 * 32 + 32
    assert estimates.expensive_identity(c) == 18 * 32 * 32 + 7 * 32
    assert estimates.redundant_ensemble(c) == 4 * 32 * 32 + 5 * 32
    assert estimates.kaiming_mismatch(c) == 9 * 32 * 32 + 64
    assert estimates.division_by_feature(c) == 32
    assert estimates.expensive_identity_linear(c) == 2 * 32 * 32 + 7 * 32
    assert estimates.kaiming_mismatch_linear(c) == 32 * 32 + 64


def test_bottleneck_keeps_at_least_one_channel() -> None:
    assert [estimates.bottleneck_hidden(w) for w in (1, 7, 8, 17)] == [1, 1, 1, 2]
    assert [estimates.norm_groups(w) for w in (1, 2, 4, 6, 12, 16)] == [1, 1, 2, 2, 4, 8]


def test_macs_per_pixel() -> None:
    assert estimates.macs_per_pixel("expensive_identity", 8) == 18 * 64
    assert estimates.macs_per_pixel("redundant_ensemble", 8) == 4 * estimates.macs_per_pixel(
        "sigmoid_sandwich", 8)
    for entry in ANTIPATTERNS:
        assert estimates.macs_per_pixel(entry.name, 4) > 0
    with pytest.raises(KeyError, match="unknown anti-pattern"):
        estimates.macs_per_pixel("conv_light", 8)


def test_catalog_lookup() -> None:
    assert get("cnn:gain_amplifier").index == 28
    assert get("gain_amplifier").key == "cnn:gain_amplifier"
    transformer = get("transformer:gain_amplifier")
    assert (transformer.key, transformer.index, transformer.factory) == (
        "transformer:gain_amplifier", 28, "transformer:GainAmplifier")
    with pytest.raises(KeyError, match="topologies cnn, transformer"):
        get("rnn:gain_amplifier")
    with pytest.raises(KeyError, match="known: correlated_noise"):
        get("gain")
