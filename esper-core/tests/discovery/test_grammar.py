"""The blueprint grammar: accepted and rejected sequences, with the reasons."""

from __future__ import annotations

import pytest

from esper_core.discovery import tokens as T
from esper_core.discovery.grammar import (
    GrammarError,
    check,
    identity_at_init,
    parse,
    to_tokens,
)

IMAGE = (8, 8, 8)

VALID = [
    "IDENTITY",
    "RELU",
    "RES_START CONV KERNEL_3 OUT_IN NORM RELU SCALE RES_END",
    "RES_START CONV KERNEL_1 OUT_D4 NORM RELU CONV KERNEL_3 OUT_D4 NORM RELU CONV KERNEL_1 OUT_IN ZERO_INIT RES_END",
    "GATE_START POOL_GLOBAL LINEAR OUT_D4 RELU LINEAR OUT_IN ZERO_INIT GATE_END",
    "GATE_START CONV KERNEL_7 OUT_IN ZERO_INIT GATE_END",
    "RES_START CONV KERNEL_5 DILATE_2 DEPTHWISE OUT_IN GELU RES_END POOL_MAX3 POOL_AVG3",
    "CONV KERNEL_1 OUT_X2 TANH CONV KERNEL_3 OUT_IN",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_sequences_check_and_round_trip(text):
    tokens = tuple(text.split())
    checked = check(tokens, IMAGE)
    assert checked.tokens == tokens
    assert parse(to_tokens(parse(tokens))) == parse(tokens)


REJECTED = [
    ("LINEAR KERNEL_5 OUT_IN", 1, "a kernel size applies to CONV, not LINEAR"),
    ("CONV OUT_IN", 1, "CONV needs a kernel token"),
    ("CONV KERNEL_3", 2, "CONV needs a width token"),
    ("CONV KERNEL_3 DEPTHWISE DILATE_2 OUT_IN", 3, "DILATE_2 out of order"),
    ("CONV KERNEL_1 DILATE_2 OUT_IN", 2, "DILATE_2 on a 1×1 kernel"),
    ("LINEAR DEPTHWISE OUT_IN", 1, "DEPTHWISE applies to CONV, not LINEAR"),
    ("OUT_IN", 0, "width OUT_IN must follow LINEAR or CONV"),
    ("KERNEL_3", 0, "KERNEL_3 must follow CONV"),
    ("ZERO_INIT", 0, "must follow a layer"),
    ("RES_START RELU", None, "group not closed"),
    ("RELU RES_END", 1, "RES_END closes nothing here"),
    ("RES_START RELU GATE_END", 2, "GATE_END closes nothing here (RES_END first)"),
    ("RES_START RES_END", 0, "empty RES_START"),
    ("RELU IDENTITY", 1, "IDENTITY must be the whole blueprint"),
    ("RELU FOO", 1, "unknown token 'FOO'"),
]


@pytest.mark.parametrize(("text", "position", "reason"), REJECTED)
def test_syntax_errors_name_position_and_reason(text, position, reason):
    with pytest.raises(GrammarError) as info:
        parse(text.split())
    assert info.value.position == position
    assert reason in info.value.reason


SHAPE_ERRORS = [
    ("LINEAR OUT_IN", IMAGE, 0, "LINEAR needs vector features"),
    ("CONV KERNEL_3 OUT_IN", (8,), 0, "CONV needs spatial input"),
    ("POOL_GLOBAL", (8,), 0, "POOL_GLOBAL needs spatial input"),
    ("RES_START CONV KERNEL_3 OUT_X2 RES_END", IMAGE, 0, "residual group maps (8, 8, 8) to (16, 8, 8)"),
    ("CONV KERNEL_1 OUT_X2 CONV KERNEL_3 DEPTHWISE OUT_IN", IMAGE, 3, "DEPTHWISE needs its output width equal"),
    ("GATE_START POOL_GLOBAL LINEAR OUT_D4 GATE_END", IMAGE, 0, "gate group gives (2,)"),
    ("CONV KERNEL_1 OUT_X2", IMAGE, None, "a seed must keep its slot's shape"),
    ("POOL_GLOBAL", IMAGE, None, "maps (8, 8, 8) to (8,)"),
]


@pytest.mark.parametrize(("text", "shape", "position", "reason"), SHAPE_ERRORS)
def test_shape_errors_name_position_and_reason(text, shape, position, reason):
    with pytest.raises(GrammarError) as info:
        check(text.split(), shape)
    assert info.value.position == position
    assert reason in info.value.reason


def test_limits():
    with pytest.raises(GrammarError, match="empty sequence"):
        parse([])
    with pytest.raises(GrammarError, match="at most 32"):
        parse(["RELU"] * 33)
    with pytest.raises(GrammarError, match="input shape"):
        check(["RELU"], (8, 1, 1, 1))


def test_parameter_count_and_bias_rule():
    # A layer directly before NORM has no bias: 3×3 conv 8→8 (576) + norm (16) + scale (8).
    assert check("RES_START CONV KERNEL_3 OUT_IN NORM RELU SCALE RES_END".split(), IMAGE).params == 600
    assert check("CONV KERNEL_3 OUT_IN".split(), IMAGE).params == 576 + 8
    assert check("CONV KERNEL_3 DEPTHWISE OUT_IN".split(), IMAGE).params == 72 + 8
    assert check("CONV KERNEL_3 OUT_IN".split(), (8, 16)).params == 3 * 64 + 8  # 1-D
    assert check(["IDENTITY"], IMAGE).params == 0


def test_identity_at_init_detection():
    assert identity_at_init(parse(["IDENTITY"]))
    assert identity_at_init(parse("RES_START CONV KERNEL_3 OUT_IN RELU SCALE RES_END".split()))
    assert identity_at_init(parse("GATE_START POOL_GLOBAL LINEAR OUT_IN ZERO_INIT GATE_END".split()))
    assert not identity_at_init(parse("RES_START CONV KERNEL_3 OUT_IN RES_END".split()))
    assert not identity_at_init(parse(["RELU"]))
    assert not identity_at_init(parse("GATE_START CONV KERNEL_1 OUT_IN GATE_END".split()))


def test_vocabulary_is_unique():
    assert len(T.VOCABULARY) == len(set(T.VOCABULARY))
