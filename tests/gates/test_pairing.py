"""Gates under every trace-based ELBO, conditioned gates, and gates per group of an event
dimension."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import (
    SVI,
    JitTrace_ELBO,
    JitTraceMeanField_ELBO,
    Trace_ELBO,
    TraceGraph_ELBO,
    TraceMeanField_ELBO,
)
from torch.distributions import kl_divergence

from l0bayes.distributions import HardConcrete, gate_kl
from l0bayes.gates import AutoL0Guide, gated
from l0bayes.gates import JitTraceMeanField_ELBO as OurJitTraceMeanField_ELBO
from l0bayes.gates.pairing import PairedGate, begin_draws, register_draw


def readme_model(X, y=None):  # the README's gated model
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=0.2)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), sigma), obs=y)


def fixed_noise(X, y=None):  # its gated sites only
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=0.2)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), 1.0), obs=y)


def _data(n=200, p=5):
    torch.manual_seed(0)
    X = torch.randn(n, p)
    return X, 2 * X[:, 0] + 0.5 * torch.randn(n)


def _loss(elbo, guide, X, y, seed):
    pyro.set_rng_seed(seed)
    return elbo.loss(fixed_noise, guide, X, y)


def test_the_gate_prior_pairs_only_with_the_guides_own_draw():
    prior = PairedGate(prior_inclusion=0.2).expand([3])
    q = HardConcrete(torch.tensor([-1.0, 0.0, 2.0]))
    z = q.sample()
    while not ((z > 0) & (z < 1)).any():  # an interior draw: no density without the guide
        z = q.sample()
    assert torch.isinf(prior.log_prob(z.clone())).any()
    begin_draws()
    register_draw(z, q)
    expected = q.log_prob(z) - gate_kl(q, prior.lam)
    assert torch.allclose(prior.log_prob(z), expected)


def test_the_guide_reports_densities_relative_to_its_own_law_at_its_draws(float64):
    """At the guide's draws its gate and value sites report log density 0 (relative to its own
    law) and the model's sites -KL, so each site's log p - log q is the same -KL as with the
    hard concrete and Normal densities written out; elsewhere the densities are ordinary."""
    X, y = _data()
    X, y = X.double(), y.double()
    guide = AutoL0Guide(fixed_noise)
    guide(X, y)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in guide.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))
    guide_trace = poutine.trace(guide).get_trace(X, y)
    model_trace = poutine.trace(poutine.replay(fixed_noise, trace=guide_trace)).get_trace(X, y)
    guide_trace.compute_log_prob()
    model_trace.compute_log_prob()
    part = guide.gate_guide
    q = HardConcrete(part.log_alpha.beta.detach())
    z = guide_trace.nodes["beta.gate"]["value"]
    theta = guide_trace.nodes["beta.theta"]["value"]
    q_theta = dist.Normal(part.loc.beta.detach(), part.scale.beta.detach())
    kl_gate = gate_kl(q, PairedGate(prior_inclusion=0.2).lam)
    kl_value = q.prob_nonzero * kl_divergence(q_theta, dist.Normal(0.0, 1.0))
    written_out = {  # log p - log q with every density computed
        "beta.gate": (q.log_prob(z) - kl_gate) - q.log_prob(z),
        "beta.theta": torch.where(z != 0, q_theta.log_prob(theta), torch.zeros_like(theta))
        - kl_value
        - torch.where(z != 0, q_theta.log_prob(theta), torch.zeros_like(theta)),
    }
    for name, expected in written_out.items():
        log_q = guide_trace.nodes[name]["log_prob"]
        log_p = model_trace.nodes[name]["log_prob"]
        assert torch.equal(log_q, torch.zeros_like(log_q))
        assert torch.allclose(log_p - log_q, expected.sum(), rtol=1e-12, atol=1e-12)
    fresh = z.clone()  # the same numbers, not the guide's draw: the hard concrete density
    q_site = guide_trace.nodes["beta.gate"]["fn"].base_dist
    assert torch.allclose(q_site.log_prob(fresh), q.log_prob(fresh), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "elbo",
    [
        Trace_ELBO(),
        TraceGraph_ELBO(),
        Trace_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=1),
    ],
    ids=["trace", "tracegraph", "vectorized"],
)
def test_trace_elbos_see_the_analytic_gate_kls(elbo):
    """Same draws, same loss as TraceMeanField_ELBO: log p - log q of every gated site is
    exactly -KL."""
    X, y = _data()
    guide = AutoL0Guide(fixed_noise)
    guide(X, y)
    mean_field = TraceMeanField_ELBO(
        num_particles=elbo.num_particles,
        vectorize_particles=elbo.vectorize_particles,
        max_plate_nesting=1,
    )
    for seed in range(3):
        ours = _loss(elbo, guide, X, y, seed)
        assert math.isfinite(ours)
        assert ours == pytest.approx(_loss(mean_field, guide, X, y, seed), rel=1e-6)


def _fit(elbo, X, y, steps=300):
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    guide = AutoL0Guide(readme_model)
    svi = SVI(readme_model, guide, pyro.optim.Adam({"lr": 0.05}), elbo)
    losses = [svi.step(X, y) for _ in range(steps)]
    return losses, guide.inclusion_probs()["beta"]


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # Pyro's own shape code
@pytest.mark.parametrize("elbo", [Trace_ELBO, JitTrace_ELBO, JitTraceMeanField_ELBO])
def test_readme_model_gives_finite_losses_and_the_same_pips(elbo, one_thread):
    X, y = _data()
    with pyro.validation_enabled(False):
        _, reference = _fit(TraceMeanField_ELBO(), X, y)
        losses, pips = _fit(elbo(), X, y)
    assert all(math.isfinite(loss) for loss in losses)
    assert (pips - reference).abs().max() < 0.05, (pips, reference)


def _plain(X, y=None):
    beta = pyro.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), 1.0), obs=y)


@pytest.mark.parametrize("gate", [1, torch.ones(3)], ids=["int", "tensor"])
def test_conditioned_gates_leave_the_plain_model(gate, float64):
    """With every gate conditioned on 1 the guide's ELBO is a plain Gaussian guide's on the
    ungated model: the same loss for the same draws, plus the constant -log p(gates)."""
    X, y = _data(30, 3)
    X, y = X.double(), y.double()
    model = poutine.condition(fixed_noise, {"beta.gate": gate})
    guide = AutoL0Guide(model)
    guide(X, y)
    loc, scale = torch.tensor([0.5, -0.3, 0.1]), torch.tensor([0.2, 0.3, 0.4])
    guide.gate_guide.loc.beta, guide.gate_guide.scale.beta = loc.clone(), scale.clone()

    def plain_guide(X, y=None):
        pyro.sample("beta", dist.Normal(loc, scale).to_event(1))

    for seed in range(3):
        pyro.set_rng_seed(seed)
        gated_loss = TraceMeanField_ELBO().differentiable_loss(model, guide, X, y)
        pyro.set_rng_seed(seed)
        plain_loss = TraceMeanField_ELBO().differentiable_loss(_plain, plain_guide, X, y)
        difference = float((gated_loss - plain_loss).detach())
        assert difference == pytest.approx(-3 * math.log(0.2), rel=1e-10)
    assert torch.equal(guide.inclusion_probs()["beta"], torch.ones(3, dtype=torch.float64))
    assert guide.sample_structures(4)["beta"].all()


def test_conditioned_gates_give_the_conjugate_posterior(one_thread):
    X, y = _data(30, 3)
    model = poutine.condition(fixed_noise, {"beta.gate": 1})
    guide = AutoL0Guide(model)
    svi = SVI(model, guide, pyro.optim.ClippedAdam({"lr": 0.05, "lrd": 0.998}), Trace_ELBO())
    with pyro.validation_enabled(False):
        for _ in range(1500):
            svi.step(X, y)
    precision = X.T @ X + torch.eye(3)  # y | beta ~ N(X beta, 1), beta ~ N(0, 1)
    mean = torch.linalg.solve(precision, X.T @ y)
    assert torch.allclose(guide.median()["beta.theta"], mean, atol=0.05)
    # the mean-field optimum: sd 1 / sqrt(precision_jj)
    scale = guide.gate_guide.scale.beta.detach()
    assert torch.allclose(scale, precision.diagonal().rsqrt(), rtol=0.25)


def _firms(per_observation: bool):
    T = 1 if per_observation else 6

    def model(y=None):
        with pyro.plate("firms", 4):
            effect = gated("w", dist.Normal(0.0, 1.0).expand([2]).to_event(1), groups=[0, 1])
            mean = effect.sum(-1, keepdim=True).expand(4, T)
            if per_observation:
                pyro.sample("y", dist.Normal(mean[:, 0], 1.0), obs=y[:, 0])
            else:  # T observations per firm, in an event dimension
                pyro.sample("y", dist.Normal(mean, 1.0).to_event(1), obs=y)

    return model, torch.randn(4, T)


def test_a_gate_per_group_of_an_event_dimension_is_not_per_observation():
    model, y = _firms(per_observation=False)
    guide = AutoL0Guide(model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), TraceMeanField_ELBO())
    assert math.isfinite(svi.step(y))
    assert guide.inclusion_probs()["w"].shape == (4, 2)
    model, y = _firms(per_observation=True)
    with pytest.raises(ValueError, match="one gate per observation"):
        AutoL0Guide(model)(y)


def _reference_loss(X, y, gate_guide, pi, seed):
    r"""The negative ELBO of ``fixed_noise`` under the guide's parameters, written out from the
    paper's formulas with the guide's own draws (same seed, same draw order: the gates'
    uniforms, then the values' normals): :math:`-\log p(y \mid z \odot \theta)
    + \sum_g \mathrm{KL}(\mathrm{Bern}(\pi_{q,g}) \| \mathrm{Bern}(\pi))
    + \sum_k \pi_{q,k} \mathrm{KL}(\mathcal N(\mu_k, s_k^2) \| \mathcal N(0, 1))`."""
    log_alpha, loc = gate_guide.log_alpha.beta, gate_guide.loc.beta
    scale = gate_guide.scale.beta
    pyro.set_rng_seed(seed)
    finfo = torch.finfo(X.dtype)
    u = torch.rand(X.shape[1], dtype=X.dtype).clamp(finfo.tiny, 1 - finfo.eps)
    eps = torch.empty(X.shape[1], dtype=X.dtype).normal_()
    beta_t, (low, high) = 2.0 / 3.0, (-0.1, 1.1)
    s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + log_alpha) / beta_t)
    z = (s * (high - low) + low).clamp(0.0, 1.0)
    coef = z * (loc + scale * eps)
    log_lik = (-0.5 * (y - X @ coef) ** 2 - 0.5 * math.log(2 * math.pi)).sum()
    pi_q = torch.sigmoid(log_alpha - beta_t * math.log(-low / high))
    kl_gate = pi_q * torch.log(pi_q / pi) + (1 - pi_q) * torch.log((1 - pi_q) / (1 - pi))
    kl_value = pi_q * (-torch.log(scale) + 0.5 * (scale**2 + loc**2) - 0.5)
    return -log_lik + kl_gate.sum() + kl_value.sum()


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # Pyro's own shape code
@pytest.mark.parametrize(
    "elbo",
    [TraceMeanField_ELBO, Trace_ELBO, OurJitTraceMeanField_ELBO],
    ids=["tmf", "trace", "jit"],
)
def test_the_gated_elbo_and_its_gradients_equal_a_reference_computation(elbo, float64):
    """The loss and every parameter's gradient, for the same seed, equal the formulas written
    out by hand (float64, to 1e-9): what the fused, memoised bookkeeping must keep."""
    X, y = _data()
    X, y = X.double(), y.double()
    pyro.clear_param_store()
    guide = AutoL0Guide(fixed_noise)
    guide(X, y)
    params = [p for _, p in sorted(guide.named_parameters())]
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in params:
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))
    ours_elbo = elbo()
    ours_elbo.differentiable_loss(fixed_noise, guide, X, y)  # the JIT's first call compiles
    for seed in range(2):
        pyro.set_rng_seed(seed)
        loss = ours_elbo.differentiable_loss(fixed_noise, guide, X, y)
        grads = torch.autograd.grad(loss, params)
        ref = _reference_loss(X, y, guide.gate_guide, 0.2, seed)
        ref_grads = torch.autograd.grad(ref, params)
        assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-9)
        for g, r in zip(grads, ref_grads, strict=True):
            assert torch.allclose(g, r, rtol=1e-9, atol=1e-9)
