"""Plain test-time chains, their sparse architecture, magnitude pruning and fine-tuning."""

import pytest
import torch
from torch import nn

from l0bayes.baselines.pruning import (
    cubic_sparsity,
    fine_tune,
    fine_tune_many,
    gradual_magnitude_prune,
    gradual_magnitude_prune_many,
    live_chain,
    magnitude_prune,
    masked_architecture,
    nonzero_weights,
    plain_chain,
    weight_layers,
)
from l0bayes.baselines.stacking import PlainStack
from l0bayes.data.images import Images
from l0bayes.nn.architecture import architecture
from l0bayes.nn.networks import lenet5, mnist_mlp


def _some_gates_closed(net):
    with torch.no_grad():
        for layer in net.gated_layers():
            closed = torch.rand_like(layer.log_alpha) < 0.4
            layer.log_alpha.copy_(torch.where(closed, -8.0, 2.0) + torch.randn_like(closed.float()))
    return net


@pytest.mark.parametrize("build, shape", [(mnist_mlp, (784,)), (lenet5, (1, 28, 28))])
def test_l0_chain_matches_the_network_and_its_architecture(build, shape):
    """The plain chain computes net(x), and counting its zero weights gives exactly the
    architecture of the deterministic gates (units, FLOPs, parameters): the naive count of
    the masked weights against the gate-level analysis."""
    torch.manual_seed(0)
    net = _some_gates_closed(build())
    chain = plain_chain(net)
    x = torch.randn(3, *shape)
    with torch.no_grad():
        torch.testing.assert_close(chain(x), net(x))
    assert all(type(m) in (nn.Linear, nn.Conv2d) for m in weight_layers(chain))
    expected = architecture(net, shape, "deterministic")
    assert masked_architecture(chain, shape) == expected
    assert expected.flops < architecture(net, shape, "dense").flops
    # the live chain: the same function, only the weights that are used
    live = live_chain(chain, shape)
    with torch.no_grad():
        torch.testing.assert_close(live(x), chain(x))
    assert nonzero_weights(live) < nonzero_weights(chain)
    if len(shape) == 1:  # fully connected: one MAC per used weight
        assert nonzero_weights(live) == expected.flops


def test_masked_architecture_by_hand():
    # 3 inputs -> 2 hidden -> 1 output; hidden unit 2 has no weights and no bias: dead
    chain = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        chain[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
        chain[0].bias.zero_()
        chain[2].weight.fill_(1.0)
    arch = masked_architecture(chain, (3,))
    assert nonzero_weights(live_chain(chain, (3,))) == 2  # v2 reads a zero unit
    # 1 input read, 1 hidden unit read; MACs: w11 and v1
    assert arch.units == (1.0, 1.0)
    assert arch.flops == 2.0
    assert arch.params == 2.0 + 2.0  # two weights, the biases of the two kept units
    # with a bias the hidden unit is a constant that the output reads
    with torch.no_grad():
        chain[0].bias[1] = 0.5
    assert masked_architecture(chain, (3,)).flops == 3.0


def test_magnitude_prune_keeps_the_largest_weights_globally():
    torch.manual_seed(1)
    chain = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))
    weights = torch.cat([m.weight.detach().abs().flatten() for m in weight_layers(chain)])
    pruned = magnitude_prune(chain, 17)
    assert nonzero_weights(pruned) == 17
    kept = torch.cat([(m.weight != 0).flatten() for m in weight_layers(pruned)])
    assert weights[kept].min() > weights[~kept].max()
    for old, new in zip(weight_layers(chain), weight_layers(pruned), strict=True):
        torch.testing.assert_close(new.bias, old.bias)  # biases are not pruned
        torch.testing.assert_close(new.weight[new.weight != 0], old.weight[new.weight != 0])
    assert nonzero_weights(chain) == 6 * 5 + 5 * 4  # the original is untouched
    assert nonzero_weights(magnitude_prune(chain, 10**6)) == 50
    with pytest.raises(ValueError, match="non-negative"):
        magnitude_prune(chain, -1)


def test_fine_tune_keeps_pruned_weights_at_zero_and_lowers_the_loss(one_thread):
    torch.manual_seed(2)
    n, d = 400, 8
    x = torch.randint(0, 256, (n, d), dtype=torch.uint8)
    y = (x[:, 0].float() > x[:, 1].float()).long()
    train = Images(x.numpy(), y.numpy(), (d,), torch.device("cpu"))
    chain = magnitude_prune(nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 2)), 60)
    zeros = [m.weight == 0 for m in weight_layers(chain)]
    fit = fine_tune(chain, train, epochs=5, lr=1e-2)
    assert fit.epoch_loss[-1] < fit.epoch_loss[0]
    for m, zero in zip(weight_layers(chain), zeros, strict=True):
        assert bool((m.weight[zero] == 0).all())
    assert nonzero_weights(chain) <= 60


def test_cubic_sparsity_follows_zhu_and_gupta():
    assert cubic_sparsity(0, 10, 110, 0.9) == 0.0
    assert cubic_sparsity(10, 10, 110, 0.9) == 0.0
    assert cubic_sparsity(60, 10, 110, 0.9) == pytest.approx(0.9 - 0.9 * 0.5**3)
    assert cubic_sparsity(110, 10, 110, 0.9) == pytest.approx(0.9)
    assert cubic_sparsity(500, 10, 110, 0.9, initial=0.2) == pytest.approx(0.9)
    values = [cubic_sparsity(t, 10, 110, 0.9) for t in range(0, 120)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))  # never un-prunes
    with pytest.raises(ValueError, match="initial"):
        cubic_sparsity(5, 0, 10, 0.3, initial=0.5)


def test_gradual_pruning_reaches_the_count_on_schedule_and_trains(one_thread, monkeypatch):
    """The mask follows the cubic schedule step by step (the non-zero weights counted after
    every mask update), ends at exactly ``num_weights`` non-zero weights, and the loss falls."""
    torch.manual_seed(3)
    n, d = 400, 8
    x = torch.randint(0, 256, (n, d), dtype=torch.uint8)
    y = (x[:, 0].float() > x[:, 1].float()).long()
    train = Images(x.numpy(), y.numpy(), (d,), torch.device("cpu"))
    chain = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 2))
    total = 8 * 16 + 16 * 2
    seen = []
    update = PlainStack.keep_largest

    def counted(stack, counts):
        update(stack, counts)
        seen.append(sum(int((stack.params[f"{i}.weight"][0] != 0).sum()) for i in stack.weighted))

    monkeypatch.setattr(PlainStack, "keep_largest", counted)
    fit = gradual_magnitude_prune(chain, train, 10, 40, begin=0.2, end=0.6, prune_every=1, lr=1e-2)
    steps = 10 * 4  # 400 examples in batches of 100
    t0, t1 = int(0.2 * steps), int(0.6 * steps)
    expected = [
        total - round(cubic_sparsity(t, t0, t1, 1 - 40 / total) * total) for t in range(t0, t1 + 1)
    ]
    assert seen == expected
    assert nonzero_weights(chain) == 40
    assert fit.epoch_loss[-1] < fit.epoch_loss[0]
    with pytest.raises(ValueError, match="begin"):
        gradual_magnitude_prune(chain, train, 1, 10, begin=0.7, end=0.5)


def test_stacked_pruning_equals_each_chain_alone(one_thread):
    """Fine-tuning and gradual pruning of several chains at once (each its own data order,
    count and initialisation) give each chain exactly what it gets alone."""
    n, d = 300, 8
    torch.manual_seed(4)
    x = torch.randint(0, 256, (n, d), dtype=torch.uint8)
    y = (x[:, 0].float() > x[:, 1].float()).long()
    train = Images(x.numpy(), y.numpy(), (d,), torch.device("cpu"))

    def chains():
        out = []
        for seed in (0, 1, 2):
            torch.manual_seed(seed)
            out.append(nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 2)))
        return out

    together, alone = chains(), chains()
    fits = gradual_magnitude_prune_many(
        together, [train] * 3, 3, [30, 60, 90], seeds=[0, 1, 2], begin=0.0, end=0.5
    )
    for k, chain in enumerate(alone):
        fit = gradual_magnitude_prune(chain, train, 3, [30, 60, 90][k], begin=0.0, end=0.5, seed=k)
        assert fit.epoch_loss == fits[k].epoch_loss and fits[k].networks == 3
        for a, b in zip(together[k].parameters(), chain.parameters(), strict=True):
            assert torch.equal(a, b)
    pruned = [magnitude_prune(c, 20) for c in together]
    copies = [magnitude_prune(c, 20) for c in together]
    fine_tune_many(pruned, [train] * 3, 2, seeds=[5, 6, 7])
    for k, chain in enumerate(copies):
        fine_tune(chain, train, 2, seed=5 + k)
        for a, b in zip(pruned[k].parameters(), chain.parameters(), strict=True):
            assert torch.equal(a, b)


def test_open_gates_give_the_dense_network_of_the_raw_weights():
    torch.manual_seed(0)
    net = _some_gates_closed(mnist_mlp())
    dense = plain_chain(net, gates="open")
    assert nonzero_weights(dense) == sum(layer.weight.numel() for layer in net.gated_layers())
    first = net.gated_layers()[0]
    torch.testing.assert_close(weight_layers(dense)[0].weight, first.weight.detach().t())
    with pytest.raises(ValueError, match="gates"):
        plain_chain(net, gates="sampled")
