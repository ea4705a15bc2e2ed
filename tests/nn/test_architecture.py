"""Units, FLOPs and compaction of gated chains against hand counts and the gated forward."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from l0bayes.nn.architecture import architecture, compact
from l0bayes.nn.layers import L0Conv2d, L0Linear, L0Sequential
from l0bayes.nn.runtime import TILE_BYTES


def mlp(gate: str = "group") -> L0Sequential:
    return L0Sequential(
        L0Linear(784, 300, gate=gate),
        nn.ReLU(),
        L0Linear(300, 100, gate=gate),
        nn.ReLU(),
        L0Linear(100, 10, gate=gate),
    )


def lenet5(gate: str = "group") -> L0Sequential:
    return L0Sequential(
        L0Conv2d(1, 20, 5, gate=gate),
        nn.ReLU(),
        nn.MaxPool2d(2),
        L0Conv2d(20, 50, 5, gate=gate),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        L0Linear(800, 500, gate=gate),
        nn.ReLU(),
        L0Linear(500, 10, gate=gate),
    )


def randomise_gates(net: nn.Module, seed: int, scale: float = 3.0) -> None:
    """Spread the gates so that some are exactly 0, some in (0, 1) and some exactly 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layers:
            if hasattr(layer, "log_alpha"):
                layer.log_alpha.copy_(scale * torch.randn(layer.log_alpha.shape, generator=gen))


def test_dense_counts_match_hand_counts():
    a = architecture(mlp(), (784,), "dense")
    assert str(a) == "784-300-100"
    assert a.flops == 784 * 300 + 300 * 100 + 100 * 10
    assert a.params == a.flops + 300 + 100 + 10
    b = architecture(lenet5(), (1, 28, 28), "dense")
    assert str(b) == "20-50-800-500"
    conv1, conv2 = 20 * 1 * 25 * 24 * 24, 50 * 20 * 25 * 8 * 8
    assert b.flops == conv1 + conv2 + 800 * 500 + 500 * 10


@pytest.mark.parametrize("make, shape", [(mlp, (784,)), (lenet5, (1, 28, 28))])
@pytest.mark.parametrize("gate", ["group", "weight"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("tile_bytes", [TILE_BYTES, 4096, 0])
def test_compact_output_equals_gated_deterministic_output(
    make, shape, gate, seed, tile_bytes, device
):
    net = make(gate)
    randomise_gates(net, seed)
    net.to(device)
    small = compact(net, shape, tile_bytes)
    if make is lenet5 and tile_bytes == 4096:  # a 20×24×24 float map exceeds 4 KiB: 1 image
        assert small.depth == 6 and small.tile == 1
    assert not any(hasattr(m, "log_alpha") for m in small.modules())
    x = torch.randn(16, *shape, generator=torch.Generator().manual_seed(seed)).to(device)
    # float32 on the GPU too: cuDNN's default TF32 convolutions round to 10-bit mantissas
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        out = small(x)
        assert out.device == x.device
        torch.testing.assert_close(out, net(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make, shape", [(mlp, (784,)), (lenet5, (1, 28, 28))])
def test_compact_is_smaller_and_its_counts_are_exact(make, shape):
    net = make()
    randomise_gates(net, seed=3)
    pruned = architecture(net, shape)
    small = compact(net, shape)
    dense_small = architecture(small, shape, "dense")
    n_params = sum(p.numel() for p in small.parameters())
    assert dense_small.params == n_params
    assert dense_small.flops < architecture(net, shape, "dense").flops
    # unread features after a Flatten are selected away: the counts are the pruned network's
    assert dense_small.flops == pruned.flops


def test_mlp_architecture_counts_inputs_read_by_open_gates():
    net = mlp()
    randomise_gates(net, seed=4)
    arch = architecture(net, (784,))
    open_gates = [int((layer.deterministic_gates() != 0).sum()) for layer in net.layers[::2]]
    assert arch.units == tuple(float(u) for u in open_gates)
    u1, u2, u3 = open_gates
    assert arch.flops == u1 * u2 + u2 * u3 + u3 * 10


def test_expected_flops_are_products_of_expected_units():
    net = mlp()
    randomise_gates(net, seed=5, scale=1.0)
    arch = architecture(net, (784,), "expected")
    e1, e2, e3 = (float(layer.inclusion_probs().detach().sum()) for layer in net.layers[::2])
    assert arch.units == pytest.approx((e1, e2, e3))
    assert arch.flops == pytest.approx(e1 * e2 + e2 * e3 + e3 * 10, rel=1e-6)


def test_expected_equals_deterministic_for_saturated_gates():
    net = lenet5()
    randomise_gates(net, seed=6)
    with torch.no_grad():  # log alpha = ±60: P(z != 0) is 0 or 1 to float precision
        for layer in net.layers:
            if hasattr(layer, "log_alpha"):
                layer.log_alpha.copy_(60.0 * torch.sign(layer.log_alpha))
    exp, det = architecture(net, (1, 28, 28), "expected"), architecture(net, (1, 28, 28))
    assert exp.units == pytest.approx(det.units)
    assert exp.flops == pytest.approx(det.flops, rel=1e-6)


def test_unsupported_layers_and_states_are_rejected():
    with pytest.raises(ValueError, match="Sigmoid is not supported"):
        architecture(nn.Sequential(nn.Linear(3, 2), nn.Sigmoid()), (3,))
    with pytest.raises(ValueError, match="state"):
        architecture(mlp(), (784,), "mean")


def test_given_gate_values_count_like_gates_set_in_the_network():
    """``gates=`` (a draw) gives the architecture of a network whose test-time gates are
    those values."""
    net = mlp()
    gen = torch.Generator().manual_seed(6)
    draw = {
        layer: (torch.rand(layer.num_gates, generator=gen) < 0.5).float() * 0.7
        for layer in net.layers[::2]
    }
    via_argument = architecture(net, (784,), gates=draw)
    with torch.no_grad():
        for layer, z in draw.items():
            layer.log_alpha.copy_(torch.where(z > 0, 10.0, -10.0))
    assert via_argument == architecture(net, (784,))


def test_compact_is_also_l0bayes_nn_compact_and_infers_a_dense_input_shape():
    import l0bayes.nn

    net = mlp()
    randomise_gates(net, seed=7)
    small = l0bayes.nn.compact(net)  # (784,) from the first layer
    x = torch.randn(4, 784)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="give input_shape"):
        l0bayes.nn.compact(lenet5())


def test_a_compacted_mlp_is_a_plain_sequential_as_the_readme_says():
    """Issue 28: it printed as TiledSequential(depth=0, tile=0, ...)."""
    net = mlp()
    randomise_gates(net, seed=3)
    small = compact(net, (784,))
    assert type(small) is nn.Sequential
    assert repr(small).startswith("Sequential(") and "Tiled" not in repr(small)
