"""The paper's networks: sizes, FLOPs against hand counts, WRN gate placement, the registry."""

from __future__ import annotations

import pyro
import pytest
import torch
from pyro.infer import TraceMeanField_ELBO

from l0bayes.nn.architecture import compact
from l0bayes.nn.networks import (
    NETWORKS,
    WideResNet,
    get_network,
    lenet5,
    mnist_mlp,
    network_architecture,
    network_expected_cost,
)


def test_mlp_and_lenet_dense_architectures_match_the_paper():
    mlp = network_architecture(mnist_mlp(), (784,), "dense")
    assert mlp.units == (784, 300, 100)
    assert mlp.flops == 784 * 300 + 300 * 100 + 100 * 10
    lenet = network_architecture(lenet5(), (1, 28, 28), "dense")
    assert lenet.units == (20, 50, 800, 500)
    conv1, conv2 = 24 * 24 * 20 * 25, 8 * 8 * 50 * 20 * 25
    assert lenet.flops == conv1 + conv2 + 800 * 500 + 500 * 10
    assert lenet.params == 20 * 25 + 20 + 50 * 500 + 50 + 800 * 500 + 500 + 500 * 10 + 10


def test_per_layer_lambda_and_drop_rates_reach_the_layers():
    net = lenet5(lam=(10, 0.5, 0.1, 0.1), init_drop_rate=0.5)
    assert [layer.lam for layer in net.gated_layers()] == [10, 0.5, 0.1, 0.1]
    mlp = mnist_mlp()
    p_open = [float(layer.deterministic_gates().detach().mean()) for layer in mlp.gated_layers()]
    assert p_open[0] > p_open[1]  # drop rate 0.2 on the input layer, 0.5 elsewhere
    with pytest.raises(ValueError, match="lam needs 1 or 4 values"):
        lenet5(lam=(1.0, 2.0))


def wrn_10_1_macs() -> int:
    """WRN-10-1 (one block per group, widths 16-16-32-64) counted by hand for a 32x32 image."""
    stem = 32 * 32 * 3 * 16 * 9
    block1 = 2 * 32 * 32 * 16 * 16 * 9
    block2 = 16 * 16 * 16 * 32 * 9 + 16 * 16 * 32 * 32 * 9 + 16 * 16 * 16 * 32
    block3 = 8 * 8 * 32 * 64 * 9 + 8 * 8 * 64 * 64 * 9 + 8 * 8 * 32 * 64
    return stem + block1 + block2 + block3 + 64 * 10


def test_wrn_flops_match_hand_count_and_shrink_with_closed_gates():
    net = WideResNet(depth=10, width=1)
    dense = network_architecture(net, (3, 32, 32), "dense")
    assert dense.units == (16, 32, 64)
    assert dense.flops == wrn_10_1_macs()
    block = net.blocks[1]
    with torch.no_grad():
        block.conv1.log_alpha[:8] = -10.0  # close 8 of the block's 32 maps
    pruned = network_architecture(net, (3, 32, 32), "deterministic")
    assert pruned.units[1] == 24
    assert dense.flops - pruned.flops == 8 * (16 * 16 * 16 * 9 + 16 * 16 * 32 * 9)


def test_wrn_decays_every_ungated_parameter_like_the_gated_slab():
    net = WideResNet(depth=10, width=1, weight_precision=25.0)
    gated = [layer.weight_precision for layer in net.gated_layers()]
    assert gated == [25.0] * 3 and net.ungated_precision == 25.0
    ungated = {id(p) for p in net.ungated_parameters()}
    for module in (net.conv, net.bn, net.fc, net.blocks[1].conv2, net.blocks[1].bn1):
        assert {id(p) for p in module.parameters()} <= ungated
    gated_ids = {id(p) for layer in net.gated_layers() for p in layer.parameters()}
    assert ungated.isdisjoint(gated_ids)
    assert len(ungated) + len(gated_ids) == len(list(net.parameters()))
    # the prior enters Pyro's ELBO (a factor in the model) as the engine's closed form
    net = net.double()
    x, y = torch.randn(3, 3, 32, 32, dtype=torch.float64), torch.tensor([0, 1, 2])
    pyro.set_rng_seed(1)
    elbo = TraceMeanField_ELBO(max_plate_nesting=2)
    traced = elbo.differentiable_loss(net.model, net.guide, x, y, 100)
    pyro.set_rng_seed(1)
    assert net.differentiable_loss(x, y, 100).item() == pytest.approx(traced.item(), rel=1e-12)
    assert -net.ungated_log_prior().item() > 0.01 * traced.item()  # a visible part of it


def test_wrn_closed_gate_removes_its_channel_exactly():
    torch.manual_seed(0)
    net = WideResNet(depth=10, width=1).eval()
    block = net.blocks[0]
    with torch.no_grad():
        block.conv1.log_alpha[3] = -10.0
    x = torch.randn(2, 16, 32, 32)
    out = block(x)
    keep = [c for c in range(16) if c != 3]
    a = torch.relu(block.bn1(x))
    h = torch.nn.functional.conv2d(a, block.conv1.weight[keep], None, 1, 1)
    bn2 = block.bn2
    h = (h - bn2.running_mean[keep, None, None]) / torch.sqrt(
        bn2.running_var[keep, None, None] + bn2.eps
    ) * bn2.weight[keep, None, None] + bn2.bias[keep, None, None]
    h = torch.relu(h) * block.conv1.deterministic_gates()[keep, None, None]
    sliced = torch.nn.functional.conv2d(h, block.conv2.weight[:, keep], None, 1, 1) + x
    torch.testing.assert_close(out, sliced, rtol=1e-5, atol=1e-5)


def multiply_accumulates(net: torch.nn.Module, x: torch.Tensor) -> int:
    """MACs of every Conv2d and Linear in one forward pass of one example, by hooks."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        w = module.weight
        per_output = w[0].numel() if isinstance(module, torch.nn.Conv2d) else w.shape[1]
        total += output[0].numel() * per_output

    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    hooks = [m.register_forward_hook(count) for m in layers]
    with torch.no_grad():
        net(x[:1])
    for h in hooks:
        h.remove()
    return total


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wrn_compaction_equals_the_deterministic_network_and_its_counts(dtype):
    torch.manual_seed(0)
    net = WideResNet(depth=16, width=2).to(dtype)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for block in net.blocks:
            block.conv1.log_alpha.copy_(3 * torch.randn(block.conv1.num_gates, generator=gen))
            for bn in (block.bn1, block.bn2):  # non-trivial running statistics
                bn.running_mean.normal_(0, 0.3, generator=gen)
                bn.running_var.uniform_(0.5, 2.0, generator=gen)
                bn.bias.normal_(0, 0.3, generator=gen)
        net.blocks[2].conv1.log_alpha.fill_(-10.0)  # a block with every map closed
    net.eval()
    small = compact(net)
    assert not any(hasattr(m, "log_alpha") for m in small.modules())
    assert small.blocks[2].conv1 is None and not small.training
    x = torch.randn(3, 3, 32, 32, dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=1e-5, atol=1e-5)
    counts = network_architecture(net, (3, 32, 32), "deterministic")
    kept = [b.conv1.out_channels if b.conv1 is not None else 0 for b in small.blocks]
    assert tuple(float(k) for k in kept) == counts.units
    assert 0 < sum(kept) < sum(b.conv1.num_gates for b in net.blocks)
    assert multiply_accumulates(small, x) == counts.flops
    assert sum(p.numel() for p in small.parameters()) == counts.params
    with pytest.raises(ValueError, match="WideResNet expects"):
        small(torch.randn(2, 1, 28, 28, dtype=dtype))


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_expected_cost_is_differentiable_and_matches_the_analysis(name):
    spec = get_network(name)
    net = spec.make(depth=10, width=1) if name == "wrn" else spec.make()
    flops, params = network_expected_cost(net, spec.input_shape)
    expected = network_architecture(net, spec.input_shape, "expected")
    assert flops.item() == pytest.approx(expected.flops, rel=1e-5)
    assert params.item() == pytest.approx(expected.params, rel=1e-5)
    flops.backward()
    grads = [layer.log_alpha.grad for layer in net.gated_layers()]
    assert all(g is not None and bool((g > 0).all()) for g in grads)  # more open, more FLOPs


def test_registry_rejects_unknown_names_and_bad_wrn_depths():
    with pytest.raises(ValueError, match="unknown network 'resnet'"):
        get_network("resnet")
    with pytest.raises(ValueError, match="6n \\+ 4"):
        WideResNet(depth=12)
