"""Behaviour specific to individual blueprints and the size helpers they share."""

from __future__ import annotations

import pytest
import torch

from esper_blueprints_cnn import estimates
from esper_blueprints_cnn.blueprints import attention, basic, convs, efficient


def test_eca_kernel_follows_the_paper() -> None:
    # k = |(log2 C + 1) / 2| rounded up to odd (Wang et al. 2020).
    assert [estimates.eca_kernel(c) for c in (1, 2, 8, 32, 64, 256, 512)] == [1, 1, 3, 3, 3, 5, 5]


@pytest.mark.parametrize("width", [1, 2, 3, 4, 7, 32, 33])
def test_mixdw_splits_cover_the_width(width: int) -> None:
    splits = estimates.mixdw_splits(width)
    assert sum(n for _, n in splits) == width
    assert all(n >= 1 for _, n in splits)
    assert [k for k, _ in splits] == list(estimates.MIXDW_KERNELS[: len(splits)])


@pytest.mark.parametrize(("width", "groups"), [(1, 1), (6, 2), (8, 4), (9, 1), (32, 4)])
def test_shuffle_groups_divide_width(width: int, groups: int) -> None:
    assert estimates.shuffle_groups(width) == groups


@pytest.mark.parametrize(("width", "groups"), [(1, 1), (6, 2), (12, 4), (32, 8)])
def test_norm_groups_divide_width(width: int, groups: int) -> None:
    assert estimates.norm_groups(width) == groups


def test_reparam_folds_into_one_conv() -> None:
    torch.manual_seed(0)
    module = convs.reparam(width=6)
    assert isinstance(module, convs.RepConv)
    x = torch.randn(2, 6, 9, 9)
    fused = module.fused()
    torch.testing.assert_close(fused(x), module.conv3(x) + module.conv1(x), atol=1e-5, rtol=1e-5)


def test_shift_moves_each_group_one_pixel_without_wrapping() -> None:
    module = efficient.ShiftConv(5)  # one channel per direction + one unshifted
    x = torch.zeros(1, 5, 3, 3)
    x[0, :, 1, 1] = 1.0
    out = module.shifted(x)
    assert out[0, 0, 1, 0] == 1  # moved left
    assert out[0, 1, 1, 2] == 1  # moved right
    assert out[0, 2, 0, 1] == 1  # moved up
    assert out[0, 3, 2, 1] == 1  # moved down
    assert out[0, 4, 1, 1] == 1  # unshifted
    assert out.sum() == 5
    edge = torch.zeros(1, 5, 3, 3)
    edge[0, 0, 1, 0] = 1.0  # moving left off the border must vanish, not wrap around
    assert module.shifted(edge)[0, 0].sum() == 0


def test_channel_shuffle_interleaves_groups() -> None:
    module = efficient.ShuffleUnit(8)  # 4 groups of 2
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert module.shuffle(x).flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]


def test_laplacian_kernel_is_a_fixed_buffer() -> None:
    module = convs.laplacian(width=3)
    assert "kernel" not in dict(module.named_parameters())
    assert "kernel" not in module.state_dict()
    # A constant image has no edges: the branch adds nothing even with a random projection.
    torch.nn.init.normal_(module.proj.weight)
    x = torch.full((1, 3, 5, 5), 2.0)
    torch.testing.assert_close(module(x)[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1] + module.proj.bias.view(1, 3, 1, 1))


def test_coord_conv_sees_position() -> None:
    # With a zero input only the coordinate channels drive the branch, so the output varies
    # across the image: the position information really reaches the conv.
    torch.manual_seed(0)
    module = convs.coord(width=4)
    torch.nn.init.ones_(module.scale.weight)
    out = module(torch.zeros(1, 4, 6, 6))
    assert out.std() > 0


def test_spatial_attention_gate_is_shared_across_channels() -> None:
    torch.manual_seed(0)
    module = attention.spatial_attention(width=3)
    torch.nn.init.normal_(module.conv.weight)
    x = torch.rand(1, 3, 6, 6) + 0.5
    ratio = module(x) / x
    torch.testing.assert_close(ratio[:, 0], ratio[:, 1])


def test_conv_heavy_is_two_conv_light_blocks() -> None:
    module = basic.conv_heavy(width=4)
    assert [type(m) for m in module] == [basic.ConvLight, basic.ConvLight]
