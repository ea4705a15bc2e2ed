"""``l0bayes.nn.posterior``: PIPs, the posterior over architectures, BMA and calibration.

Monte-Carlo checks use fixed seeds and tolerances of 5 standard errors derived from the number
of draws S (a false failure rate below 1e-6 per checked quantity, were the seed free)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import l0bayes.nn.posterior as posterior
from l0bayes.nn.architecture import architecture
from l0bayes.nn.layers import L0Linear, L0Sequential, l0_layers
from l0bayes.nn.networks import WideResNet, lenet5, mnist_mlp, network_architecture

SHAPES = {"mlp": (784,), "lenet5": (1, 28, 28), "wrn": (3, 32, 32)}


def make(name: str):
    torch.manual_seed(0)
    if name == "mlp":
        return mnist_mlp().eval()
    if name == "lenet5":
        return lenet5().eval()
    return WideResNet(depth=10, width=1).eval()


def spread_gates(net, scale: float = 2.0) -> None:
    """log α ~ N(0, scale²): inclusion probabilities spread over (0, 1)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in l0_layers(net):
            layer.log_alpha.copy_(scale * torch.randn(layer.num_gates, generator=gen))


def set_gates(net, value: float, closed_every: int = 0) -> None:
    """Saturate every gate at ``value`` (±30: z = 1 or z = 0 almost surely); with
    ``closed_every = k``, every k-th gate of each layer is closed instead."""
    with torch.no_grad():
        for layer in l0_layers(net):
            layer.log_alpha.fill_(value)
            if closed_every:
                layer.log_alpha[::closed_every] = -30.0


def inputs(name: str, n: int) -> torch.Tensor:
    return torch.randn(n, *SHAPES[name], generator=torch.Generator().manual_seed(2))


# ----------------------------------------------------------------------------- PIPs
@pytest.mark.parametrize("name", ["mlp", "lenet5"])
def test_pips_are_the_layers_inclusion_probs_in_layer_order(name):
    net = make(name)
    spread_gates(net)
    pips = posterior.inclusion_probabilities(net)
    layers = net.gated_layers()
    assert list(pips) == posterior.gated_layer_names(net) and len(pips) == len(layers)
    for (key, p), layer in zip(pips.items(), layers, strict=True):
        assert net.get_submodule(key) is layer
        np.testing.assert_allclose(p, layer.inclusion_probs().detach().numpy(), rtol=1e-6)


def test_input_gate_image_is_the_first_layers_pips_row_major():
    net = make("mlp")
    spread_gates(net)
    image = posterior.input_gate_image(net)
    pip = net.gated_layers()[0].inclusion_probs().detach().numpy()
    assert image.shape == (28, 28)
    assert image[3, 17] == pytest.approx(pip[3 * 28 + 17])
    with pytest.raises(ValueError, match="784 input-neuron gates"):
        posterior.input_gate_image(make("lenet5"))


# ----------------------------------------------------------------------------- architectures
def test_posterior_unit_counts_and_flops_match_the_closed_forms():
    """E[units] = Σ PIP per MLP layer (every input neuron is alive), E[FLOPs] = the closed-form
    expectation of ``architecture(state="expected")``: the draws are counted right."""
    net = make("mlp")
    spread_gates(net)
    S = 400
    post = posterior.sample_architectures(net, SHAPES["mlp"], num_samples=S, seed=3)
    assert post.units.shape == (S, 3) and post.num_samples == S
    for i, (name, pip) in enumerate(posterior.inclusion_probabilities(net).items()):
        np.testing.assert_array_equal(post.units[:, i], post.included[name].sum(1))
        se = math.sqrt((pip * (1 - pip)).sum() / S)
        assert abs(post.units[:, i].mean() - pip.sum()) < 5 * se
    expected = architecture(net, SHAPES["mlp"], "expected")
    for draws, mean in ((post.flops, expected.flops), (post.params, expected.params)):
        assert abs(draws.mean() - mean) < 5 * draws.std(ddof=1) / math.sqrt(S)


@pytest.mark.parametrize("name", ["mlp", "lenet5", "wrn"])
def test_draws_of_saturated_gates_give_the_deterministic_architecture(name):
    """Gates at log α = ±30 are 0 or 1 in every draw and at test time: every drawn
    architecture is the test-time one, upstream pruning included (LeNet-5's FC layer loses
    the features of closed conv maps; Wide-ResNet counts with its own summary)."""
    net = make(name)
    set_gates(net, 30.0, closed_every=3)
    post = posterior.sample_architectures(net, SHAPES[name], num_samples=5, seed=0)
    det = network_architecture(net, SHAPES[name], "deterministic")
    assert det.flops < network_architecture(net, SHAPES[name], "dense").flops
    assert post.deterministic == det
    np.testing.assert_array_equal(post.units, np.tile(det.units, (5, 1)))
    np.testing.assert_array_equal(post.flops, det.flops)
    np.testing.assert_array_equal(post.params, det.params)
    rows = posterior.architecture_summary(post)
    assert len(rows) == len(det.units) + 2
    assert [r["quantity"] for r in rows[-2:]] == ["FLOPs", "non-zero parameters"]
    for row in rows:
        assert row["deterministic_rank"] == 0.5
        assert row["lower"] == row["upper"] == row["posterior_mean"] == row["deterministic"]
    for agree in posterior.unit_agreement(post).values():
        np.testing.assert_array_equal(agree, 1.0)


def test_unit_agreement_and_coinclusion_match_the_factorised_guide():
    """Under the mean-field guide the agreement of gate g tends to π_g (open at test time) or
    1 − π_g, and the co-inclusion to π_i π_j off the diagonal and π_i on it."""
    torch.manual_seed(0)
    net = L0Sequential(L0Linear(12, 3))
    with torch.no_grad():
        net.gated_layers()[0].log_alpha.copy_(torch.linspace(-5.0, 4.0, 12))
    S = 4000
    post = posterior.sample_architectures(net, (12,), num_samples=S, seed=4)
    name = post.names[0]
    pip = posterior.inclusion_probabilities(net)[name]
    is_open = post.deterministic_open[name]
    assert 0 < is_open.sum() < 12  # both branches of the closed form are checked
    limit = np.where(is_open, pip, 1 - pip)
    agree = posterior.unit_agreement(post)[name]
    assert np.all(np.abs(agree - limit) < 5 * np.sqrt(limit * (1 - limit) / S) + 1e-12)
    c = posterior.coinclusion(post.included[name])
    truth = np.outer(pip, pip)
    np.fill_diagonal(truth, pip)
    assert c.shape == (12, 12) and np.allclose(c, c.T)
    assert np.all(np.abs(c - truth) < 5 * np.sqrt(truth * (1 - truth) / S) + 1e-12)


def test_credible_interval_and_rank():
    values = np.arange(101.0)
    interval = posterior.credible_interval(values, 0.9)
    assert (interval.mean, interval.lower, interval.upper) == pytest.approx((50.0, 5.0, 95.0))
    assert posterior.posterior_rank(values, 50) == pytest.approx(50.5 / 101)
    assert (
        posterior.posterior_rank(values, -1) == 0.0 and posterior.posterior_rank(values, 200) == 1
    )
    with pytest.raises(ValueError, match="level"):
        posterior.credible_interval(values, 1.0)


def test_draws_are_seeded_and_leave_the_network_and_rng_alone():
    net = make("mlp")
    spread_gates(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    a = posterior.sample_architectures(net, SHAPES["mlp"], num_samples=6, seed=7)
    b = posterior.sample_architectures(net, SHAPES["mlp"], num_samples=6, seed=7)
    c = posterior.sample_architectures(net, SHAPES["mlp"], num_samples=6, seed=8)
    np.testing.assert_array_equal(a.flops, b.flops)
    assert not np.array_equal(a.flops, c.flops)
    assert torch.equal(torch.get_rng_state(), rng)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])
    with pytest.raises(ValueError, match="num_samples"):
        posterior.sample_gates(net, num_samples=0)


# ----------------------------------------------------------------------------- calibration
def test_ece_by_hand():
    """Confidences 0.9 (right, wrong) and 0.6 (right, right): |0.5 − 0.9|/2 + |1 − 0.6|/2."""
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    y = np.array([0, 1, 1, 0])
    assert posterior.expected_calibration_error(probs, y) == pytest.approx(0.4)
    counts, acc, conf = posterior.reliability_bins(probs, y)
    assert counts.sum() == 4 and counts[8] == 2 and counts[13] == 2  # (8/15, 9/15], (13/15, 1]
    assert acc[13] == 0.5 and conf[8] == pytest.approx(0.6) and np.isnan(acc[0])


def synthetic_predictions(n: int, overconfident: bool, seed: int = 0):
    """4-class predictions with confidence c ~ U(0.3, 1) on class 0; the label is 0 with
    probability c (calibrated) or 0.6 while the predictor claims 0.99 (overconfident)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.3, 1.0, size=n)
    right = rng.uniform(size=n) < (0.6 if overconfident else c)
    y = np.where(right, 0, rng.integers(1, 4, size=n))
    if overconfident:
        c = np.full(n, 0.99)
    probs = np.column_stack([c, *[(1 - c) / 3] * 3])
    return probs, y


def test_ece_of_calibrated_and_overconfident_predictors():
    """Calibrated: ECE is only the binning noise, about Σ_b √(n_b)/N ≈ 0.006 here.
    Overconfident (0.99 claimed, 60% right): ECE = 0.39."""
    probs, y = synthetic_predictions(20000, overconfident=False)
    assert posterior.expected_calibration_error(probs, y) < 0.03
    probs, y = synthetic_predictions(20000, overconfident=True)
    assert posterior.expected_calibration_error(probs, y) == pytest.approx(0.39, abs=0.02)


def test_classification_metrics_by_hand():
    log_probs = torch.log(torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]]))
    m = posterior.classification_metrics(log_probs, torch.tensor([0, 1, 1]))
    assert m["accuracy"] == pytest.approx(2 / 3) and m["error"] == pytest.approx(1 / 3)
    assert m["nll"] == pytest.approx(-(math.log(0.7) + math.log(0.8) + math.log(0.4)) / 3)
    with pytest.raises(ValueError, match="N = len"):
        posterior.classification_metrics(log_probs, torch.tensor([0, 1]))


# ----------------------------------------------------------------------------- BMA
@pytest.mark.parametrize("name", ["mlp", "lenet5", "wrn"])
def test_bma_with_saturated_open_gates_is_the_deterministic_network(name, device):
    net = make(name)
    set_gates(net, 30.0)
    net.to(device)
    x = inputs(name, 6).to(device)
    bma = posterior.bma_log_probs(net, x, num_samples=3, seed=0, batch_size=4)
    det = posterior.deterministic_log_probs(net, x, batch_size=4)
    torch.testing.assert_close(bma, det, rtol=0, atol=1e-5)
    assert bma.device.type == det.device.type == "cpu"  # results come back to the CPU
    torch.testing.assert_close(det, F.log_softmax(net(x), -1).detach().cpu())


def test_bma_is_the_naive_average_with_one_draw_shared_by_all_chunks(device):
    """Reference: the same S draws (same RNG order), each applied to the whole test set at
    once, and the probabilities averaged directly."""
    net = make("mlp")
    spread_gates(net, scale=1.0)
    net.to(device)
    x, S = inputs("mlp", 10).to(device), 4
    cuda = [torch.device(device).index or 0] if device == "cuda" else []
    with torch.random.fork_rng(devices=cuda), torch.no_grad():
        torch.manual_seed(5)
        probs = [
            F.softmax(net._run(x, {layer: layer.sample() for layer in net.gated_layers()}), -1)
            for _ in range(S)
        ]
    naive = torch.stack(probs).mean(0).log().cpu()
    fast = posterior.bma_log_probs(net, x, num_samples=S, seed=5, batch_size=3)
    torch.testing.assert_close(fast, naive, rtol=1e-5, atol=1e-6)
    det = posterior.deterministic_log_probs(net, x)
    assert not torch.allclose(fast, det, atol=1e-3)  # the gates really were drawn


def test_compare_bma_reports_both_predictors():
    net = make("mlp")
    set_gates(net, 30.0)
    x = inputs("mlp", 8)
    y = net(x).argmax(-1).detach()
    out = posterior.compare_bma(net, x, y, num_samples=2)
    for key in ("bma", "deterministic"):
        assert out[key]["accuracy"] == 1.0 and out[key]["log_probs"].shape == (8, 10)
    assert out["bma"]["nll"] == pytest.approx(out["deterministic"]["nll"], abs=1e-5)
    with pytest.raises(ValueError, match="different lengths"):
        posterior.compare_bma(net, x, y[:5], num_samples=2)
