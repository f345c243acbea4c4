"""GPTHost: segmentation, tied weights, configuration."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from esper_blueprints_transformer.config import GPTConfig
from esper_blueprints_transformer.host import GPTHost
from esper_core.contracts.protocols import InjectionPoint, SegmentedHost
from esper_core.errors import ConfigError


def test_default_host_is_segmented() -> None:
    host = GPTHost()
    assert isinstance(host, SegmentedHost)
    assert host.injection_points == (InjectionPoint("layer1", 64), InjectionPoint("layer2", 64))
    assert len(host.segments) == len(host.injection_points) + 1
    logits = host(torch.randint(256, (3, 64)))
    assert logits.shape == (3, 64, 256)


@pytest.mark.parametrize(("n_layers", "per_point", "points"), [(4, 1, 4), (4, 2, 2), (3, 3, 1)])
def test_points_after_groups_of_blocks(n_layers: int, per_point: int, points: int) -> None:
    host = GPTHost(GPTConfig(n_layers=n_layers, layers_per_point=per_point, d_model=32, n_heads=2))
    assert [p.name for p in host.injection_points] == [f"layer{i + 1}" for i in range(points)]
    assert all(p.width == 32 for p in host.injection_points)
    assert len(host.segments) == points + 1
    blocks = sum(1 for m in host.modules() if type(m).__name__ == "Block")
    assert blocks == n_layers


def test_segment_widths_match_points() -> None:
    host = GPTHost(GPTConfig(d_model=48, n_heads=3, context=16))
    x = torch.randint(256, (2, 10))
    for point, segment in zip(host.injection_points, host.segments, strict=False):
        x = segment(x)
        assert x.shape == (2, 10, point.width)


def test_lm_head_is_tied_to_the_token_embedding() -> None:
    host = GPTHost()
    embedding = host.segments[0][0].tok.weight
    assert host.segments[-1].head.weight is embedding
    # Counted once, so an optimiser steps it once.
    n_unique = sum(p.numel() for p in {id(p): p for p in host.parameters()}.values())
    assert sum(p.numel() for p in host.parameters()) == n_unique
    host(torch.randint(256, (2, 8))).sum().backward()
    assert embedding.grad is not None
    clone = copy.deepcopy(host)
    assert clone.segments[-1].head.weight is clone.segments[0][0].tok.weight
    buffer = io.BytesIO()
    torch.save(host.state_dict(), buffer)
    buffer.seek(0)
    fresh = GPTHost()
    fresh.load_state_dict(torch.load(buffer))
    assert fresh.segments[-1].head.weight is fresh.segments[0][0].tok.weight
    torch.testing.assert_close(fresh.segments[0][0].tok.weight, embedding)


def test_forward_equals_the_segment_chain() -> None:
    host = GPTHost().eval()
    idx = torch.randint(256, (2, 20))
    x = idx
    for segment in host.segments:
        x = segment(x)
    assert torch.equal(host(idx), x)


def test_context_is_enforced() -> None:
    host = GPTHost(GPTConfig(context=8))
    with pytest.raises(ValueError, match="exceeds the host's context of 8"):
        host(torch.randint(256, (1, 9)))


def test_dropout_only_in_training() -> None:
    host = GPTHost(GPTConfig(dropout=0.5))
    idx = torch.randint(256, (2, 16))
    host.eval()
    assert torch.equal(host(idx), host(idx))
    host.train()
    assert not torch.equal(host(idx), host(idx))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"d_model": 30, "n_heads": 4}, "not divisible by n_heads"),
        ({"n_layers": 3, "layers_per_point": 2}, "not a multiple of layers_per_point"),
        ({"dropout": 1.0}, "dropout"),
        ({"context": 0}, "context"),
        ({"n_layers": True}, "n_layers"),
    ],
)
def test_config_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GPTConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"d_model": 32, "n_heads": 2, "n_layers": 3, "context": 17}, {"d_model": 8, "n_heads": 1, "vocab_size": 11}],
)
def test_parameter_count_is_the_built_hosts(kwargs: dict) -> None:
    # The memory check prices a host from its config before building it (the tied head counts once).
    config = GPTConfig(**kwargs)
    assert config.parameter_count == sum(p.numel() for p in GPTHost(config).parameters())
