"""``analysis/plain_reference.py``: the plain-PyTorch MLP stack is the paper's objective, its
networks train independently, and the study writes its tables."""

import csv
import math

import pytest
import torch

from l0bayes.nn.networks import mnist_mlp


@pytest.fixture(scope="module")
def ref(load_script):
    return load_script("analysis/plain_reference.py")


def stack_like(ref, net):
    """A one-network stack holding ``net``'s parameters."""
    stack = ref.StackedL0MLP(["uniform"], torch.Generator().manual_seed(0))
    with torch.no_grad():
        for i, layer in enumerate(net.gated_layers()):
            stack.weights[i].copy_(layer.weight[None])
            stack.biases[i].copy_(layer.bias[None])
            stack.log_alpha[i].copy_(layer.log_alpha[None])
    return stack


def test_penalty_and_test_time_network_equal_l0bayes(ref):
    """Written apart from the library, the reference computes the same regularizer (value and
    gradients) and the same Eq. 13 network as l0bayes's ``mnist_mlp`` in ``kl_mode="l0"``."""
    torch.manual_seed(0)
    net = mnist_mlp(lam=0.1, weight_precision=30.0)
    with torch.no_grad():
        for layer in net.gated_layers():  # spread the gates over open, closed and between
            layer.log_alpha.add_(2.0 * torch.randn_like(layer.log_alpha))
    stack = stack_like(ref, net)
    penalty = stack.penalty(0.1, torch.tensor([30.0]), torch.tensor([0.0]))
    kl = net.kl_divergence()
    torch.testing.assert_close(penalty[0], kl, rtol=1e-6, atol=0)
    penalty.sum().backward()
    kl.backward()
    for i, layer in enumerate(net.gated_layers()):  # the same gradients, not only the value
        torch.testing.assert_close(stack.log_alpha[i].grad[0], layer.log_alpha.grad)
        torch.testing.assert_close(stack.weights[i].grad[0], layer.weight.grad)
    x = torch.rand(7, 784)
    torch.testing.assert_close(stack(x[None], stack.gates(sample=False))[0], net(x))
    units, macs = stack.architecture()
    widths = [int((layer.deterministic_gates() > 0).sum()) for layer in net.gated_layers()]
    assert units[0].tolist() == widths
    assert macs[0] == sum(a * b for a, b in zip(widths, [*widths[1:], 10], strict=True))


def test_penalty_counts_lambda_once_per_weight_and_decays_biases(ref):
    stack = ref.StackedL0MLP(["he", "uniform"], torch.Generator().manual_seed(1))
    with torch.no_grad():
        for b in stack.biases:
            b.fill_(0.5)
    lam = 0.3
    code = stack.penalty(lam, torch.zeros(2), torch.zeros(2))
    shift = ref.BETA * math.log(-ref.GAMMA / ref.ZETA)
    by_hand = sum(
        torch.sigmoid(la - shift).sum(-1) * lam * w.shape[-1]
        for la, w in zip(stack.log_alpha, stack.weights, strict=True)
    )
    torch.testing.assert_close(code, by_hand)
    with_bias = stack.penalty(lam, torch.zeros(2), torch.tensor([0.0, 2.0]))
    bias_sq = 0.25 * (300 + 100 + 10)  # ungated: paid whatever the gates
    torch.testing.assert_close(with_bias - code, torch.tensor([0.0, 0.5 * 2.0 * bias_sq]))


def test_sampled_gates_have_the_hard_concrete_atom_at_zero(ref):
    """Monte Carlo P(z = 0) against the closed form, within 5 standard errors, and every
    draw in [0, 1]."""
    stack = ref.StackedL0MLP(["he"], torch.Generator().manual_seed(2))
    with torch.no_grad():
        stack.log_alpha[0].copy_(torch.linspace(-3, 3, 784)[None])
    gen = torch.Generator().manual_seed(3)
    draws, zeros = 4000, torch.zeros(1, 784, dtype=torch.float64)
    for _ in range(draws):
        gates = stack.gates(sample=True, generator=gen)
        assert all(z.min() >= 0 and z.max() <= 1 for z in gates)
        zeros += gates[0] == 0
    la = stack.log_alpha[0].detach().double()
    p0 = torch.sigmoid(ref.BETA * math.log(-ref.GAMMA / ref.ZETA) - la)
    stderr = (p0 * (1 - p0) / draws).sqrt()
    assert ((zeros / draws - p0).abs() <= 5 * stderr).all()


def test_stacked_networks_train_independently(ref):
    """Network r's gradient of the summed loss is that of its own loss (and its loss moves no
    other network): the stack is separate trainings."""
    stack = ref.StackedL0MLP(["he", "uniform", "he"], torch.Generator().manual_seed(4))
    x, y = torch.rand(3, 5, 784), torch.randint(0, 10, (3, 5))
    gates = stack.gates(sample=True, generator=torch.Generator().manual_seed(5))
    precision = torch.tensor([30.0, 30.0, 5e-4])
    ce = torch.nn.functional.cross_entropy(
        stack(x, gates).flatten(0, 1), y.flatten(), reduction="none"
    )
    losses = ce.view(3, 5).mean(-1) + stack.penalty(0.1, precision, precision) / 60000
    params = list(stack.parameters())
    summed = torch.autograd.grad(losses.sum(), params, retain_graph=True)
    own = torch.autograd.grad(losses[1], params)
    for total, alone in zip(summed, own, strict=True):
        torch.testing.assert_close(total[1], alone[1])
        assert alone[1].abs().sum() > 0 and alone[[0, 2]].abs().sum() == 0


def test_study_writes_one_row_per_network_and_a_summary_per_variant(ref, tmp_path, one_thread):
    out = tmp_path / "plain"
    rows = ref.main(["--dataset", "synthetic", "--train-size", "400", "--test-size", "200",
                     "--epochs", "3", "--replicates", "2", "--variants", "official",
                     "library-unscaled", "--out", str(out), "--no-progress"])  # fmt: skip
    assert [(r["variant"], r["replicate"]) for r in rows] == [
        ("official", 0), ("official", 1), ("library-unscaled", 2), ("library-unscaled", 3)
    ]  # fmt: skip
    with (out / "history.csv").open(newline="") as fh:
        history = list(csv.DictReader(fh))
    assert len(history) == 3 * 4
    assert all(r["epoch"] == 3 for r in rows)
    for r in rows:  # the synthetic classes are easy: far better than the 90% of guessing
        assert r["test_error"] < 0.5 and r["best_error"] <= r["test_error"]
    summary = (out / "summary.md").read_text()
    assert summary.count("2 replicates, epoch 3") == 2 and "library-unscaled" in summary


@pytest.mark.parametrize(
    "args, message",
    [
        (["--variants", "mine"], "invalid choice"),
        (["--replicates", "0"], "--replicates must be at least 1"),
        (["--batch-size", "5000"], "exceeds the 400 training examples"),
    ],
)
def test_bad_settings_are_refused_with_their_name(ref, tmp_path, capsys, args, message):
    base = [
        "--dataset",
        "synthetic",
        "--train-size",
        "400",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    with pytest.raises((ValueError, SystemExit)) as info:
        ref.main(base + args)
    assert message in str(info.value) + capsys.readouterr().err
