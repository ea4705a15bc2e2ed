"""Gated layers: the ELBO's penalty is the paper's regularizer and the traced ``gated`` model's
KL, sites, scaling and errors."""

from __future__ import annotations

import math

import pyro
import pytest
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.distributions.constraints import positive
from pyro.infer import SVI, TraceMeanField_ELBO
from pyro.nn import PyroParam
from torch import nn

from l0bayes.distributions import GaussianSlab, HardConcrete
from l0bayes.gates import AutoL0Guide, gated
from l0bayes.nn.layers import L0Conv2d, L0Linear, L0Sequential, drop_rate_to_log_alpha


def penalty_loss(net: L0Sequential, x: torch.Tensor) -> torch.Tensor:
    """The negative ELBO without the likelihood: the sum of the analytic KL terms."""
    model = poutine.block(net.model, hide=["obs"])
    elbo = TraceMeanField_ELBO(max_plate_nesting=2)
    return elbo.differentiable_loss(model, net.guide, x, None, 100)


def paper_regularizer(layer: L0Linear | L0Conv2d) -> torch.Tensor:
    r""":math:`\sum_g P(z_g \ne 0)(\lambda S + \tfrac{\lambda_2}{2}\sum_s \theta_{g,s}^2)`,
    written from the paper's formula, not from the library's helpers."""
    beta, (gamma, zeta) = layer.temperature, layer.stretch
    p_open = torch.sigmoid(layer.log_alpha - beta * torch.log(torch.tensor(-gamma / zeta)))
    w = layer.weight.reshape(layer.weight.shape[0], -1)
    per_gate = layer.lam * w.shape[1] + 0.5 * layer.weight_precision * (w**2).sum(1)
    return (p_open * per_gate).sum()


@pytest.mark.parametrize("local_rep", [False, True])
def test_l0_penalty_equals_paper_regularizer_and_gradients(float64, local_rep):
    layer = L0Linear(6, 4, lam=0.3, weight_precision=2.0, local_rep=local_rep)
    net = L0Sequential(layer)
    with torch.no_grad():
        layer.log_alpha.copy_(torch.linspace(-3, 3, 6))
    x = torch.randn(7, 6)
    loss = penalty_loss(net, x)
    params = [pyro.param("layers.0.log_alpha"), pyro.param("layers.0.weight")]
    grads = torch.autograd.grad(loss, params)
    expected = paper_regularizer(layer)
    expected_grads = torch.autograd.grad(expected, [layer.log_alpha, layer.weight])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-10)


def test_conv_group_gate_pays_lambda_per_weight_of_its_map(float64):
    layer = L0Conv2d(3, 5, 3, lam=0.2, weight_precision=0.5)
    assert layer.num_gates == 5 and layer.group_size == 27
    assert layer.gate_cost() == pytest.approx(0.2 * 27)
    net = L0Sequential(layer, nn.Flatten(), nn.Linear(5 * 4 * 4, 2))
    loss = penalty_loss(net, torch.randn(2, 3, 6, 6))
    assert loss.item() == pytest.approx(paper_regularizer(layer).item(), rel=1e-10)


def test_bayes_mode_gate_kl_is_bernoulli_kl(float64):
    pi = 0.2
    layer = L0Linear(5, 2, prior_inclusion=pi, kl_mode="bayes")
    loss = penalty_loss(L0Sequential(layer), torch.randn(3, 5))
    q = layer.inclusion_probs()
    bern_kl = q * torch.log(q / pi) + (1 - q) * torch.log((1 - q) / (1 - pi))
    assert loss.item() == pytest.approx(bern_kl.sum().item(), rel=1e-9)


def test_sites_are_named_after_layers_and_data_is_scaled():
    net = L0Sequential(L0Linear(4, 3), nn.ReLU(), L0Linear(3, 2))
    x, y = torch.randn(5, 4), torch.randint(0, 2, (5,))
    guide_trace = poutine.trace(net.guide).get_trace(x, y, 40)
    trace = poutine.trace(poutine.replay(net.model, guide_trace)).get_trace(x, y, num_data=40)
    for name in ("layers.0.gate", "layers.0.theta", "layers.2.gate", "layers.2.theta"):
        assert trace.nodes[name]["type"] == "sample"
    assert trace.nodes["obs"]["scale"] == pytest.approx(40 / 5)
    assert trace.nodes["layers.0.gate"]["scale"] == 1.0  # global: not scaled by N/B


def test_per_example_gates_have_batch_shape_and_unit_total_weight():
    net = L0Sequential(L0Linear(4, 3, local_rep=True))
    trace = poutine.trace(net.guide).get_trace(torch.randn(6, 4))
    site = trace.nodes["layers.0.gate"]
    assert site["value"].shape == (6, 4)
    assert site["scale"] == pytest.approx(1 / 6)


def test_deterministic_forward_matches_manual_formula():
    layer = L0Linear(5, 3)
    x = torch.randn(4, 5)
    q = HardConcrete(layer.log_alpha.detach())
    z_hat = torch.clamp(torch.sigmoid(q.log_alpha) * 1.2 - 0.1, 0, 1)
    expected = (x * z_hat) @ layer.weight + layer.bias
    torch.testing.assert_close(layer(x), expected)
    conv = L0Conv2d(2, 3, 3, padding=1)
    x = torch.randn(2, 2, 5, 5)
    z_hat = conv.deterministic_gates()
    expected = F.conv2d(x, conv.weight, conv.bias, padding=1) * z_hat[:, None, None]
    torch.testing.assert_close(conv(x), expected)


def test_initial_gates_follow_the_drop_rate():
    layer = L0Linear(2000, 2, init_drop_rate=0.2)
    assert layer.log_alpha.mean().item() == pytest.approx(drop_rate_to_log_alpha(0.2), abs=1e-3)
    assert layer.log_alpha.std().item() == pytest.approx(0.01, rel=0.1)


@pytest.mark.parametrize(
    "make, fan_in",
    [
        (lambda **kw: L0Linear(784, 300, **kw), 784),
        (lambda **kw: L0Conv2d(20, 50, 5, **kw), 500),
    ],
)
def test_weight_initialisations_have_their_scales(make, fan_in):
    torch.manual_seed(0)
    he, uniform = make(weight_init="he"), make()
    n = he.weight.numel()
    # the sample standard deviation's relative standard error is about 1/sqrt(2n); allow 5 of them
    tol = 5 / math.sqrt(2 * n)
    assert he.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=tol)
    assert abs(he.weight.mean().item()) < 5 * math.sqrt(2 / fan_in / n)
    assert he.bias.std().item() == pytest.approx(0.01, rel=5 / math.sqrt(2 * he.bias.numel()))
    bound = 1 / math.sqrt(fan_in)
    assert uniform.weight.abs().max().item() <= bound
    assert uniform.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=tol)
    assert torch.equal(uniform.bias, torch.zeros_like(uniform.bias))
    assert he.bias.shape == uniform.bias.shape == (he.weight.shape[1 if fan_in == 784 else 0],)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(gate="group"),
        dict(gate="weight"),
        dict(local_rep=True),
        dict(weight_guide="normal", weight_precision=1.0, kl_mode="bayes", prior_inclusion=0.3),
    ],
)
def test_svi_steps_run_and_reduce_the_loss(kwargs, device):
    pyro.set_rng_seed(1)
    net = L0Sequential(
        L0Conv2d(1, 4, 3, **kwargs),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        L0Linear(4 * 3 * 3, 8, **kwargs),
        nn.ReLU(),
        nn.Linear(8, 2),
    ).to(device)
    x = torch.randn(32, 1, 8, 8, device=device)
    y = (x.mean((1, 2, 3)) > 0).long()
    svi = SVI(net.model, net.guide, pyro.optim.Adam({"lr": 0.02}), TraceMeanField_ELBO())
    losses = [svi.step(x, y, num_data=320) for _ in range(60)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-10:]) < sum(losses[:10])
    assert "layers.6.weight" in pyro.get_param_store()  # the plain nn.Linear is trained too
    assert net.sample_forward(x).shape == (32, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gate="weight", local_rep=True), "local_rep"),
        (dict(lam=-1.0), "lam"),
        (dict(lam=0.1, prior_inclusion=0.3), "not both"),
        (dict(prior_inclusion=1.5), "prior_inclusion"),
        (dict(init_drop_rate=0.0), "init_drop_rate"),
        (dict(weight_guide="normal"), "weight_precision"),
        (dict(gate="neuron"), "gate"),
        (dict(temperature=0.0), "temperature"),
        (dict(weight_init="xavier"), "weight_init"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L0Linear(3, 2, **kwargs)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="input features"):
        L0Linear(3, 2)(torch.randn(4, 5))
    with pytest.raises(ValueError, match="expected input of shape"):
        L0Conv2d(3, 2, 3)(torch.randn(4, 1, 8, 8))
    with pytest.raises(ValueError, match="num_data"):
        L0Sequential(L0Linear(3, 2)).model(torch.randn(4, 3), None, 2)
    with pytest.raises(TypeError, match="unexpected"):
        L0Linear(3, 2, lamda=0.1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_svi_step_on_gpu():
    net = L0Sequential(L0Linear(6, 4, local_rep=True), nn.ReLU(), L0Linear(4, 2)).cuda()
    x, y = torch.randn(8, 6, device="cuda"), torch.randint(0, 2, (8,), device="cuda")
    svi = SVI(net.model, net.guide, pyro.optim.Adam({"lr": 0.01}), TraceMeanField_ELBO())
    assert torch.isfinite(torch.tensor(svi.step(x, y, num_data=80)))
    assert net(x).device.type == "cuda"


def _mlp_like(**kwargs) -> L0Sequential:
    return L0Sequential(
        L0Linear(6, 5, lam=0.3, weight_precision=0.5, **kwargs),
        nn.ReLU(),
        L0Linear(5, 3, lam=0.1, weight_precision=0.5, **kwargs),
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: _mlp_like(),
        lambda: _mlp_like(local_rep=True, kl_mode="bayes"),
        lambda: _mlp_like(weight_guide="normal"),
        lambda: _mlp_like(gate="weight"),
        lambda: L0Sequential(
            L0Conv2d(2, 3, 3, lam=0.2, weight_precision=1.0, local_rep=True),
            nn.ReLU(),
            nn.Flatten(),
            L0Linear(12, 3, lam=0.2),
        ),
        lambda: L0Sequential(
            L0Linear(6, 5, lam=0.3, weight_precision=0.5),
            nn.ReLU(),
            nn.Linear(5, 3),
            ungated_precision=0.7,
        ),
    ],
    ids=["mlp", "local-bayes", "normal-weights", "weight-gates", "conv", "ungated-prior"],
)
def test_closed_form_loss_equals_trace_mean_field_elbo(float64, make, device):
    """The engine's objective is Pyro's ELBO: same value and gradients under the same RNG."""
    net = make().to(device)
    shape = (4, 6) if isinstance(net.layers[0], L0Linear) else (4, 2, 4, 4)
    x = torch.randn(shape, device=device)
    y = torch.tensor([0, 1, 2, 1], device=device)
    net.guide(x, y, 50)  # register the parameters
    params = [p for p in net.parameters() if p.requires_grad]
    pyro.set_rng_seed(3)
    traced = TraceMeanField_ELBO(max_plate_nesting=2).differentiable_loss(
        net.model, net.guide, x, y, 50
    )
    traced_grads = torch.autograd.grad(traced, params)
    pyro.set_rng_seed(3)
    direct = net.differentiable_loss(x, y, 50)
    direct_grads = torch.autograd.grad(direct, params)
    assert direct.item() == pytest.approx(traced.item(), rel=1e-12)
    for got, want in zip(direct_grads, traced_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_ungated_parameters_get_the_gaussian_prior(float64):
    head = nn.Linear(5, 3)
    net = L0Sequential(L0Linear(6, 5, lam=0.3), nn.ReLU(), head, ungated_precision=0.7)
    assert {id(p) for p in net.ungated_parameters()} == {id(head.weight), id(head.bias)}
    want = -0.35 * (head.weight.square().sum() + head.bias.square().sum())
    torch.testing.assert_close(net.ungated_log_prior(), want)
    x, y = torch.randn(4, 6), torch.tensor([0, 1, 2, 1])
    pyro.set_rng_seed(0)
    with_prior = net.differentiable_loss(x, y, 50)
    net.ungated_precision = 0.0
    pyro.set_rng_seed(0)
    torch.testing.assert_close(with_prior - net.differentiable_loss(x, y, 50), -want)
    with pytest.raises(ValueError, match="ungated_precision must be finite and >= 0"):
        L0Sequential(L0Linear(6, 5), ungated_precision=-1.0)


def test_network_moves_between_dtypes_and_devices():
    """``Module.to`` must reach the gates (a layer method once shadowed ``nn.Module._apply``)."""
    net = _mlp_like().to(torch.float64).to("cpu")
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert net(torch.randn(2, 6, dtype=torch.float64)).dtype == torch.float64


#: Layers whose weights fall in ``G`` gate groups of ``S`` weights: an input neuron's row of
#: ``out`` weights, an output map's ``in * kh * kw`` weights, or single weights.
GATED_LAYERS = {
    "linear": lambda **kw: L0Linear(4, 3, **kw),  # G = 4, S = 3
    "linear-weight-gates": lambda **kw: L0Linear(4, 3, gate="weight", **kw),  # G = 12, S = 1
    "linear-per-example": lambda **kw: L0Linear(4, 3, local_rep=True, **kw),  # (B, G) draws
    "conv": lambda **kw: L0Conv2d(2, 3, 2, **kw),  # G = 3, S = 2 * 2 * 2
}


def _gated_layer_prior(num_gates, group_size, weight_guide, precision, kl_mode, cost):
    """The layer's prior written with :func:`l0bayes.gates.gated`: ``num_gates * group_size``
    slab elements, element ``g * group_size + s`` in group ``g`` (the layer's weights in row-major
    order, gate ``g`` controlling row ``g`` of ``weight.reshape(G, S)``); no observed site, so the
    negative ELBO is the KL alone."""
    slab = GaussianSlab(torch.tensor(precision), normalized=weight_guide == "normal")
    ids = torch.arange(num_gates).repeat_interleave(group_size) if group_size > 1 else None
    gated("w", slab.expand([num_gates * group_size]), groups=ids, kl_mode=kl_mode, **cost)


@pytest.mark.parametrize("cost", [dict(lam=0.3), dict(prior_inclusion=0.2)], ids=["lam", "pi"])
@pytest.mark.parametrize("weight_guide", ["delta", "normal"])
@pytest.mark.parametrize("kl_mode", ["bayes", "l0"])
@pytest.mark.parametrize("kind", sorted(GATED_LAYERS))
def test_the_fused_layer_kl_equals_the_traced_gated_model(
    float64, kind, kl_mode, weight_guide, cost
):
    """Same parameters: a layer's closed-form :meth:`~L0Layer.kl_divergence` and the negative
    ELBO of its own ``model``/``guide`` equal the negative ELBO of the same prior written with
    ``gated`` and guided by :class:`AutoL0Guide` (to 1e-9), and so do the gradients.

    Both priors are expressible: ``lam`` is a cost per weight in both (a group of ``S`` weights
    pays ``lam * S``), ``prior_inclusion`` one per gate in both, and the slab is the layer's
    :class:`GaussianSlab` (unnormalized under MAP weights, proper under Gaussian ones). The
    bias carries no prior in the layer and so has no site here. With per-example gates
    (``local_rep``) the layer's ELBO counts the global gates' KL once, as ``gated``'s one draw."""
    precision = 1.3
    layer = GATED_LAYERS[kind](
        kl_mode=kl_mode, weight_guide=weight_guide, weight_precision=precision, **cost
    )
    G, S = layer.num_gates, layer.group_size
    g = torch.Generator().manual_seed(5)
    log_alpha = 2 * torch.randn(G, generator=g)
    weight = torch.randn(layer.weight.shape, generator=g)
    scale = 0.05 + torch.rand(layer.weight.shape, generator=g)
    layer.log_alpha = nn.Parameter(log_alpha.clone())
    layer.weight = nn.Parameter(weight.clone())
    fused_params = [layer.log_alpha, layer.weight]
    if weight_guide == "normal":
        layer.weight_scale = PyroParam(scale.clone(), constraint=positive)
        fused_params.append(layer.weight_scale_unconstrained)

    fused_kl = layer.kl_divergence()
    fused_grads = torch.autograd.grad(fused_kl, fused_params)
    batch_size = 5 if layer.local_rep else None  # B draws of the gates, each scaled by 1/B
    fused_elbo = TraceMeanField_ELBO().differentiable_loss(layer.model, layer.guide, batch_size)

    args = (G, S, weight_guide, precision, kl_mode, cost)
    guide = AutoL0Guide(_gated_layer_prior, values=weight_guide)
    guide(*args)
    part = guide.gate_guide
    part.log_alpha.w, part.loc.w = log_alpha, weight.reshape(-1)
    if weight_guide == "normal":
        part.scale.w = scale.reshape(-1)
    traced = TraceMeanField_ELBO().differentiable_loss(_gated_layer_prior, guide, *args)
    (flat_grad,) = torch.autograd.grad(traced, [part.packed_parameter("w")])
    traced_grads = list(part.split_packed("w", flat_grad).values())  # log alpha, loc, log scale

    # the same closed forms summed in another order: float64 rounding (~1e-16 a term) only
    assert fused_kl.item() == pytest.approx(traced.item(), rel=1e-9)
    assert fused_elbo.item() == pytest.approx(traced.item(), rel=1e-9)
    for got, want in zip(fused_grads, traced_grads, strict=True):
        torch.testing.assert_close(got.reshape(-1), want, rtol=1e-9, atol=1e-12)
