from __future__ import annotations

import pytest
import torch

from esper_blueprints_cnn.host import CNNHost, HostConfig
from esper_core.contracts.protocols import InjectionPoint, SegmentedHost


def test_default_host_is_small_and_segmented() -> None:
    host = CNNHost()
    assert isinstance(host, SegmentedHost)
    assert host.injection_points == (
        InjectionPoint("block1", 8), InjectionPoint("block2", 16), InjectionPoint("block3", 32)
    )
    assert len(host.segments) == len(host.injection_points) + 1
    # conv weights + BatchNorm affine per block, then the linear head: 6,418 parameters.
    expected = sum(9 * a * b + 2 * b for a, b in [(3, 8), (8, 16), (16, 32)]) + 32 * 10 + 10
    assert sum(p.numel() for p in host.parameters()) == expected == 6418


def test_injection_point_widths_match_segment_outputs() -> None:
    host = CNNHost(HostConfig(widths=(4, 6, 10, 12))).eval()
    x = torch.randn(2, 3, 32, 32)
    for segment, point in zip(host.segments, host.injection_points, strict=False):
        x = segment(x)
        assert x.shape[1] == point.width
    assert host.segments[-1](x).shape == (2, 10)


def test_forward_equals_segments_in_order_and_plain_sequential() -> None:
    torch.manual_seed(0)
    host = CNNHost().eval()
    x = torch.randn(5, 3, 32, 32)
    manual = x
    for segment in host.segments:
        manual = segment(manual)
    torch.testing.assert_close(host(x), manual)
    torch.testing.assert_close(host.sequential()(x), manual)
    seq_params = {id(p) for p in host.sequential().parameters()}
    assert seq_params == {id(p) for p in host.parameters()}


@pytest.mark.parametrize("pool", ["max", "avg", "none"])
def test_pool_options_and_odd_sizes(pool: str) -> None:
    host = CNNHost(HostConfig(pool=pool, kernel_size=5, num_classes=3, in_channels=1))
    assert host(torch.randn(2, 1, 13, 7)).shape == (2, 3)
    assert host(torch.randn(2, 1, 1, 1)).shape == (2, 3)


def test_channels_last_host_matches_contiguous() -> None:
    torch.manual_seed(0)
    host = CNNHost(HostConfig(widths=(32, 32))).eval()
    x = torch.randn(3, 3, 16, 16)
    ref = host(x)
    host_cl = host.to(memory_format=torch.channels_last)
    torch.testing.assert_close(host_cl(x.contiguous(memory_format=torch.channels_last)), ref, atol=1e-5, rtol=1e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_host_is_scriptable() -> None:
    host = CNNHost().eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(torch.jit.script(host)(x), host(x))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        # values are shown as TOML writes them, a list in brackets
        ({"widths": ()}, r"^\[\] is invalid; expected a non-empty list of positive integers"),
        ({"widths": (8, 0)}, r"^\[8, 0\] is invalid; expected a non-empty list"),
        ({"widths": "8,x"}, "integer"),
        ({"kernel_size": 2}, "odd"),
        ({"pool": "median"}, "pool"),
        ({"num_classes": 1}, "num_classes"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HostConfig(**kwargs)


def test_config_accepts_command_line_widths() -> None:
    assert HostConfig(widths="4, 8").widths == (4, 8)
    assert HostConfig(widths=["4", 8]).widths == (4, 8)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"widths": (4, 8, 16)}, {"widths": (5,), "kernel_size": 5, "num_classes": 3},
     {"widths": (3, 7, 2, 9), "pool": "none", "in_channels": 1}],
)
def test_parameter_count_is_the_built_hosts(kwargs: dict) -> None:
    # The memory check prices a host from its config before building it.
    config = HostConfig(**kwargs)
    assert config.parameter_count == sum(p.numel() for p in CNNHost(config).parameters())
