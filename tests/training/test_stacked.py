"""Stacked chains: the batched expected cost against the architecture analysis of each
network, and the grouped convolution against the convolutions network by network."""

import pytest
import torch

from l0bayes.nn.networks import get_network, network_expected_cost
from l0bayes.training.stacked import GATES, StackedChain, check_chain


def _nets(network: str, count: int = 3):
    nets = []
    for k in range(count):
        torch.manual_seed(k)
        nets.append(get_network(network).make(lam=0.1 * (k + 1)))
    return nets


@pytest.mark.parametrize("network", ["mnist-mlp", "lenet5"])
def test_expected_cost_equals_each_networks_architecture_analysis(network):
    nets = _nets(network)
    for k, net in enumerate(nets):  # spread the gates' probabilities
        with torch.no_grad():
            for layer in net.gated_layers():
                layer.log_alpha.copy_(torch.randn(layer.num_gates) * 2 + k - 1)
    shape = get_network(network).input_shape
    expected = [network_expected_cost(net, shape) for net in nets]
    chain = StackedChain(nets, shape, range(len(nets)))
    flops, params = chain.expected_cost(chain.posterior().prob_nonzero)
    for k, (f, p) in enumerate(expected):
        assert flops[k].item() == pytest.approx(f.item(), rel=1e-5)
        assert params[k].item() == pytest.approx(p.item(), rel=1e-5)
    fractions = chain.expected_fractions(chain.posterior().prob_nonzero, "params", "global")
    assert fractions[:, 0].tolist() == pytest.approx((params / chain.dense.params).tolist())
    per_layer = chain.expected_fractions(chain.posterior().prob_nonzero, "params", "layer")
    for k, net in enumerate(nets):
        means = [layer.inclusion_probs().mean().item() for layer in net.gated_layers()]
        assert per_layer[k].tolist() == pytest.approx(means, rel=1e-6)


def test_parameters_become_views_of_the_stack_with_padded_gate_rows():
    nets = _nets("lenet5", 2)
    chain = StackedChain(nets, (1, 28, 28), [0, 1])
    assert chain.num_gates == 20 + 50 + 800 + 500 and chain.row % 16 == 0
    with torch.no_grad():
        chain.params[GATES][1, 20] = 42.0  # the first gate of the second conv of network 1
        chain.params["layers.0.weight"][0].zero_()
    assert nets[1].layers[3].log_alpha[0].item() == 42.0
    assert not nets[0].layers[0].weight.any() and nets[1].layers[0].weight.any()


def test_grouped_convolution_equals_the_convolutions_network_by_network():
    """One grouped convolution (CUDA's default) and one convolution per network (the CPU's):
    the same logits and gradients to float rounding."""
    nets = _nets("lenet5", 3)
    grouped = StackedChain(nets, (1, 28, 28), [0, 1, 2], grouped_conv=True)
    x = torch.rand(3, 8, 1, 28, 28)
    q = grouped.posterior(grouped.params[GATES][:, None])
    z = q.from_uniform(torch.rand(3, 8, grouped.row))  # per-example gates too
    results = []
    for mode in (True, False):
        grouped.grouped_conv = mode
        for p in grouped.params.values():
            p.grad = None
        logits = grouped.logits(x, z.detach())
        (logits * torch.linspace(-1, 1, 10)).sum().backward()
        grads = {k: p.grad.clone() for k, p in grouped.params.items() if k != GATES}
        results.append((logits.detach(), grads))
    (a, grads_a), (b, grads_b) = results
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for key in grads_a:
        torch.testing.assert_close(grads_a[key], grads_b[key], rtol=1e-4, atol=1e-6)
    deterministic = grouped.logits(x, None)
    grouped.grouped_conv = True
    torch.testing.assert_close(grouped.logits(x, None), deterministic, rtol=1e-5, atol=1e-6)


def test_what_cannot_be_stacked_is_refused_in_one_line():
    from l0bayes.nn.networks import wide_resnet

    with pytest.raises(ValueError, match="only chains"):
        check_chain(wide_resnet(depth=10, width=1))
    net = get_network("mnist-mlp").make(local_rep=False)
    net.layers[0].weight_guide = "normal"
    with pytest.raises(ValueError, match="point-mass"):
        check_chain(net)
