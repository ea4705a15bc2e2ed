"""The CPU engine of compacted chains: strided max-pooling, ReLU/pool reordering and batch
tiling leave the chain's output unchanged."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from l0bayes.nn.runtime import StridedMaxPool2d, TiledSequential, exact_rewrites, tiled


def conv_chain() -> list[nn.Module]:
    torch.manual_seed(0)
    return [
        nn.Conv2d(1, 6, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 2 * 2, 5),
    ]


@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 4),
    height=st.integers(2, 11),
    width=st.integers(3, 11),
    kernel=st.sampled_from([2, 3, (2, 3), (3, 1)]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=60, deadline=None)
def test_strided_max_pool_equals_max_pool_bit_for_bit(
    batch, channels, height, width, kernel, dtype, seed
):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, height, width, generator=gen, dtype=dtype)
    x[x > 1.5] = float("inf")
    x[x < -1.5] = float("-inf")
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    if height < k[0] or width < k[1]:
        return
    torch.testing.assert_close(StridedMaxPool2d(kernel)(x), F.max_pool2d(x, kernel), rtol=0, atol=0)


def test_strided_max_pool_propagates_nan_like_max_pool():
    x = torch.randn(1, 2, 4, 4)
    x[0, 1, 2, 3] = float("nan")
    out, ref = StridedMaxPool2d(2)(x), F.max_pool2d(x, 2)
    assert torch.equal(out.isnan(), ref.isnan()) and int(out.isnan().sum()) == 1
    torch.testing.assert_close(out.nan_to_num(), ref.nan_to_num(), rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2, stride=1),
        dict(kernel_size=2, padding=1),
        dict(kernel_size=3, stride=3, ceil_mode=True),
        dict(kernel_size=2, dilation=2),
        dict(kernel_size=1),
    ],
)
def test_strided_max_pool_falls_back_for_windows_that_do_not_tile(kwargs):
    x = torch.randn(2, 3, 7, 7)
    torch.testing.assert_close(StridedMaxPool2d(**kwargs)(x), nn.MaxPool2d(**kwargs)(x))
    assert StridedMaxPool2d(**kwargs)._window() is None
    with_indices = StridedMaxPool2d(2, return_indices=True)(x)
    assert isinstance(with_indices, tuple) and with_indices[1].dtype == torch.int64


def test_strided_max_pool_gradient_is_max_pools():
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    (g,) = torch.autograd.grad(StridedMaxPool2d(2)(x).square().sum(), x)
    (ref,) = torch.autograd.grad(nn.MaxPool2d(2)(x).square().sum(), x)
    assert torch.equal(g, ref)


def test_rewrites_reorder_relu_and_pool_and_keep_the_output():
    chain = conv_chain()
    rewritten = exact_rewrites(chain)
    assert [type(m).__name__ for m in rewritten[:3]] == ["Conv2d", "StridedMaxPool2d", "ReLU"]
    assert [type(m) for m in chain[:3]] == [nn.Conv2d, nn.ReLU, nn.MaxPool2d]  # not in place
    x = torch.randn(5, 1, 14, 14)
    with torch.no_grad():
        assert torch.equal(nn.Sequential(*rewritten)(x), nn.Sequential(*chain)(x))


def test_tiled_prefix_is_the_feature_map_layers_and_the_tile_fills_the_budget():
    chain = exact_rewrites(conv_chain())
    shapes = []
    x = torch.zeros(1, 1, 14, 14)
    for m in chain:
        x = m(x)
        shapes.append(x.shape[1:])
    largest = 6 * 12 * 12 * 4  # bytes of the first convolution's output per image
    net = tiled(chain, shapes, itemsize=4, tile_bytes=3 * largest + 1)
    assert (net.depth, net.tile, net.channels_last) == (6, 3, True)
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert net[-1].weight.is_contiguous()  # the fully connected tail is left alone
    assert type(tiled(chain, shapes, 4, 0)) is nn.Sequential  # nothing tiled: a plain chain
    assert tiled(chain, shapes, 4, 1).tile == 1
    mlp = tiled([nn.Linear(3, 2), nn.ReLU()], [torch.Size([2])] * 2, 4)
    assert type(mlp) is nn.Sequential and repr(mlp).startswith("Sequential(")
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="tile_bytes must be an integer"):
            tiled(chain, shapes, 4, bad)


@pytest.mark.parametrize("batch", [1, 3, 7, 10])
@pytest.mark.parametrize("channels_last", [False, True])
def test_tiled_output_matches_whole_batch(batch, channels_last):
    chain = exact_rewrites(conv_chain())
    whole = TiledSequential(*chain)
    tiles = TiledSequential(*chain, depth=6, tile=3, channels_last=channels_last)
    x = torch.randn(batch, 1, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(tiles(x), whole(x), rtol=1e-6, atol=1e-6)
    assert list(tiles.state_dict()) == list(nn.Sequential(*chain).state_dict())
    assert len(list(tiles)) == len(chain) and "tile=3" in repr(tiles)


def test_tiled_sequential_rejects_negative_settings():
    with pytest.raises(ValueError, match="depth and tile"):
        TiledSequential(nn.ReLU(), depth=-1)
    with pytest.raises(ValueError, match="depth and tile"):
        TiledSequential(nn.ReLU(), tile=-2)


def test_a_trace_runs_whole_batches_so_it_works_for_any_batch_size():
    chain = exact_rewrites(conv_chain())
    tiles = TiledSequential(*chain, depth=6, tile=2).eval()
    with torch.no_grad():
        traced = torch.jit.trace(tiles, torch.randn(5, 1, 14, 14))
        x = torch.randn(9, 1, 14, 14)
        torch.testing.assert_close(traced(x), tiles(x), rtol=1e-6, atol=1e-6)
