"""Tokens → module → tokens, scripting, and the catalog's token forms."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from esper_core.discovery.compile import compile_program, decompile
from esper_core.discovery.grammar import GrammarError, check, identity_at_init, parse
from esper_core.discovery.search import random_program


@pytest.mark.parametrize("shape", [(8,), (8, 12), (8, 6, 6), (1, 3, 3)])
def test_random_programs_round_trip_through_modules(shape):
    rng = random.Random(1)
    compiled = 0
    for _ in range(300):
        tokens = random_program(rng)
        try:
            checked = check(tokens, shape)
        except GrammarError:
            continue
        module = compile_program(checked)
        assert decompile(module) == tokens
        assert sum(p.numel() for p in module.parameters()) == checked.params
        y = module(torch.randn(2, *shape))
        assert y.shape == (2, *shape)
        compiled += 1
    assert compiled >= 10


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.script` is deprecated:FutureWarning")  # scripting is the point
def test_compiled_modules_script_and_identity_at_init():
    tokens = "RES_START CONV KERNEL_3 OUT_IN NORM RELU SCALE RES_END GATE_START POOL_GLOBAL LINEAR OUT_D4 " \
             "RELU LINEAR OUT_IN ZERO_INIT GATE_END".split()
    module = compile_program(tokens, (8, 5, 5)).eval()
    assert identity_at_init(parse(tokens))
    x = torch.randn(3, 8, 5, 5)
    torch.testing.assert_close(module(x), x)
    scripted = torch.jit.script(module)
    torch.testing.assert_close(scripted(x), module(x))


def test_decompile_rejects_foreign_modules():
    with pytest.raises(GrammarError, match="was not compiled"):
        decompile(nn.Conv2d(2, 2, 3))
    module = compile_program(["RELU"], (4, 2, 2))
    module.append(nn.Dropout())
    with pytest.raises(GrammarError, match="Dropout has no token"):
        decompile(module)
    with pytest.raises(GrammarError, match="needs the input shape"):
        compile_program(["RELU"])


def _catalog():
    pytest.importorskip("esper_blueprints_cnn")
    from esper_blueprints_cnn.catalog import blueprint_specs

    return [s for s in blueprint_specs() if s.tokens is not None]


def test_catalog_token_forms_match_the_hand_written_modules():
    specs = _catalog()
    assert {s.name for s in specs} >= {"noop", "conv_light", "attention", "norm", "depthwise", "bottleneck",
                                      "conv_small", "conv_heavy", "dilated"}
    for spec in specs:
        for width in (1, 8, 32):
            module = compile_program(spec.tokens, (width, 6, 6))
            reference = spec.factory(width=width)
            assert decompile(module) == spec.tokens
            assert _shapes(module) == _shapes(reference), spec.name
            assert check(spec.tokens, (width, 6, 6)).params == spec.param_estimate(width)
            layers = [type(m).__name__ for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.GroupNorm)]
            ref_layers = [type(m).__name__ for m in reference.modules()
                          if isinstance(m, nn.Conv2d | nn.Linear | nn.GroupNorm)]
            assert layers == ref_layers, spec.name
            x = torch.randn(2, width, 6, 6)
            torch.testing.assert_close(module.eval()(x), x)  # both start at identity


def _shapes(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(layer type, parameter shape) in order; the catalog's scales are (1, C, 1, 1), ours (C, 1, 1)."""
    out = []
    for m in module.modules():
        for p in m.parameters(recurse=False):
            kind = type(m).__name__
            out.append((kind, (p.numel(), 1, 1) if kind == "ChannelScale" else tuple(p.shape)))
    return out
