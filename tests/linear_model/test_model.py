"""The Pyro model and guide of l0bayes.linear_model.model: where λ enters the ELBO, and the
wiring."""

import math

import pyro
import pytest
import torch
from pyro import poutine
from pyro.distributions.constraints import positive
from pyro.infer import TraceMeanField_ELBO

from l0bayes.distributions import GaussianSlab
from l0bayes.gates import AutoL0Guide, gated
from l0bayes.linear_model.model import (
    RegressionPrior,
    RegressionStats,
    gaussian_rss,
    regression_guide,
    regression_guide_stats,
    regression_model,
    regression_model_stats,
)
from l0bayes.linear_model.stats import GaussianStats

STRETCH = (-0.1, 1.1)
BETA = 2.0 / 3.0


def _problem(n=20, p=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, p, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, 0.0, -0.5], dtype=torch.float64)[:p] + torch.randn(
        n, generator=g, dtype=torch.float64
    )
    return X, y


def _set_guide_params(p, seed=1):
    g = torch.Generator().manual_seed(seed)
    pyro.param("gate_log_alpha", torch.randn(p, generator=g, dtype=torch.float64))
    pyro.param("weight_loc", torch.randn(p, generator=g, dtype=torch.float64))
    pyro.param("intercept", torch.tensor(0.3, dtype=torch.float64))


def _paper_regularizer(log_alpha, theta, lam, lam2):
    """Σ_j (1 − Q_j(s ≤ 0)) (λ + λ2/2 θ_j²), Q the CDF of the stretched concrete (Eq. 12)."""
    q_s_le_0 = torch.sigmoid(BETA * math.log(-STRETCH[0] / STRETCH[1]) - log_alpha)
    return ((1 - q_s_le_0) * (lam + 0.5 * lam2 * theta**2)).sum()


def _replayed_loglik(X, y, prior, seed):
    """log p(y | X, z, θ) at the guide draw that a loss evaluation with ``seed`` uses."""
    pyro.set_rng_seed(seed)
    guide_trace = poutine.trace(regression_guide).get_trace(X, y, prior)
    model_trace = poutine.trace(poutine.replay(regression_model, guide_trace)).get_trace(
        X, y, prior
    )
    model_trace.compute_log_prob()
    return model_trace.nodes["obs"]["log_prob_sum"]


@pytest.mark.parametrize("lam, lam2", [(0.7, 0.0), (0.7, 0.3), (2.5, 1e-2)])
def test_l0_mode_elbo_gradient_is_paper_regularizer(lam, lam2):
    X, y = _problem()
    prior = RegressionPrior(
        lam=lam, kl_mode="l0", slab_precision=lam2, slab_normalized=False, noise_scale=1.0
    )
    _set_guide_params(X.shape[1])
    log_alpha, theta = pyro.param("gate_log_alpha"), pyro.param("weight_loc")
    elbo = TraceMeanField_ELBO()
    pyro.set_rng_seed(7)
    loss = elbo.differentiable_loss(regression_model, regression_guide, X, y, prior)
    loglik = _replayed_loglik(X, y, prior, seed=7)
    penalty = loss + loglik  # the ELBO's penalty terms, with the likelihood draw removed
    got = torch.autograd.grad(penalty, [log_alpha, theta])
    want = torch.autograd.grad(_paper_regularizer(log_alpha, theta, lam, lam2), [log_alpha, theta])
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=0)
    # and the full loss gradient is the likelihood's plus the regularizer's
    torch.testing.assert_close(penalty, _paper_regularizer(log_alpha, theta, lam, lam2))


def test_bayes_mode_adds_gate_entropy_and_slab_normalizer():
    X, y = _problem()
    lam, prec = 0.4, 2.0
    prior = RegressionPrior(
        lam=lam,
        kl_mode="bayes",
        slab_precision=prec,
        slab_normalized=True,
        noise_scale=1.0,
        weight_guide="normal",
    )
    _set_guide_params(X.shape[1])
    pyro.param("weight_scale", torch.full((3,), 0.2, dtype=torch.float64))
    pyro.set_rng_seed(3)
    loss = TraceMeanField_ELBO().differentiable_loss(
        regression_model, regression_guide, X, y, prior
    )
    penalty = loss + _replayed_loglik(X, y, prior, seed=3)
    la, mu = pyro.param("gate_log_alpha"), pyro.param("weight_loc")
    s = torch.full((3,), 0.2, dtype=torch.float64)
    pi_q = torch.sigmoid(la - BETA * math.log(-STRETCH[0] / STRETCH[1]))
    pi = 1 / (1 + math.exp(lam))
    gate_kl = pi_q * torch.log(pi_q / pi) + (1 - pi_q) * torch.log((1 - pi_q) / (1 - pi))
    var0 = 1 / prec
    weight_kl = 0.5 * ((s**2 + mu**2) / var0 - 1 - torch.log(s**2 / var0))
    torch.testing.assert_close(penalty, (gate_kl + pi_q * weight_kl).sum())


def test_subsampled_likelihood_is_scaled_by_n_over_batch():
    X, y = _problem(n=50)
    prior = RegressionPrior(noise_scale=1.0, subsample_size=10)
    _set_guide_params(3)
    guide_trace = poutine.trace(regression_guide).get_trace(X, y, prior)
    trace = poutine.trace(poutine.replay(regression_model, guide_trace)).get_trace(X, y, prior)
    obs = trace.nodes["obs"]
    assert obs["value"].shape == (10,)
    assert obs["scale"] == pytest.approx(5.0)
    # the gates are global: their KL is not scaled by the data plate
    assert trace.nodes["gate"]["scale"] == 1.0


def test_vectorized_particles_shapes_and_bernoulli_family():
    X, y = _problem()
    yb = (y > 0).double()
    prior = RegressionPrior(family="bernoulli", lam=1.0)
    elbo = TraceMeanField_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1)
    loss = elbo.differentiable_loss(regression_model, regression_guide, X, yb, prior)
    assert loss.shape == () and torch.isfinite(loss)


def test_prior_rejects_unknown_family_and_weight_guide():
    with pytest.raises(ValueError, match="family"):
        RegressionPrior(family="gamma")
    with pytest.raises(ValueError, match="weight_guide"):
        RegressionPrior(weight_guide="laplace")


# ----------------------------------------------------------- the sufficient-statistics model
def _stats_and_prior(n=30, p=3, **kwargs):
    X, y = _problem(n=n, p=p)
    X, y = X + 0.7, y - 1.3  # not centred: the sums enter the likelihood too
    return X, y, RegressionStats.from_data(X, y), RegressionPrior(lam=1.3, **kwargs)


@pytest.mark.parametrize("noise_scale", [None, 0.8])
@pytest.mark.parametrize("num_particles", [1, 4])
def test_stats_model_elbo_and_gradients_equal_the_per_observation_model(noise_scale, num_particles):
    X, y, stats, prior = _stats_and_prior(noise_scale=noise_scale)
    _set_guide_params(3)
    pyro.param("noise_scale", torch.tensor(1.4, dtype=torch.float64), constraint=positive)
    elbo = TraceMeanField_ELBO(
        num_particles=num_particles, vectorize_particles=num_particles > 1, max_plate_nesting=1
    )
    params = [pyro.param(k).unconstrained() for k in pyro.get_param_store().keys()]
    values = []
    for model, guide, args in [
        (regression_model, regression_guide, (X, y, prior)),
        (regression_model_stats, regression_guide_stats, (stats, prior)),
    ]:
        pyro.set_rng_seed(11)  # the same gate draws
        loss = elbo.differentiable_loss(model, guide, *args)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        values.append((loss, grads))
    (loss_x, grads_x), (loss_s, grads_s) = values
    torch.testing.assert_close(loss_s, loss_x, rtol=0, atol=1e-8)
    for gs, gx in zip(grads_s, grads_x, strict=True):
        if gx is None:  # noise_scale is unused when it is fixed
            assert gs is None
        else:
            torch.testing.assert_close(gs, gx, rtol=0, atol=1e-8)


def test_stats_log_likelihood_equals_the_per_observation_one_at_the_same_draw():
    X, y, stats, prior = _stats_and_prior(noise_scale=0.9)
    _set_guide_params(3)
    want = _replayed_loglik(X, y, prior, seed=5)
    pyro.set_rng_seed(5)
    guide_trace = poutine.trace(regression_guide_stats).get_trace(stats, prior)
    trace = poutine.trace(poutine.replay(regression_model_stats, guide_trace)).get_trace(
        stats, prior
    )
    trace.compute_log_prob()
    torch.testing.assert_close(trace.nodes["obs"]["log_prob_sum"], want, rtol=0, atol=1e-8)
    coef = torch.randn(5, 3, dtype=torch.float64)  # batched coefficients too
    b = torch.tensor(0.4, dtype=torch.float64)
    direct = ((y - b - coef @ X.T) ** 2).sum(-1)
    torch.testing.assert_close(gaussian_rss(stats, b, coef), direct, rtol=1e-12, atol=1e-9)


def test_the_torch_view_of_the_accumulator_equals_the_raw_moments():
    X, y, stats, _ = _stats_and_prior(n=40, p=3)
    view = RegressionStats.of(GaussianStats.from_arrays(X.numpy(), y.numpy()))
    assert view.n == stats.n
    for name in ("gram", "xty", "yty", "x_sum", "y_sum"):
        torch.testing.assert_close(getattr(view, name), getattr(stats, name), rtol=1e-11, atol=1e-9)


def test_stats_model_refuses_bernoulli_minibatches_and_bad_shapes():
    _, _, stats, _ = _stats_and_prior()
    with pytest.raises(ValueError, match="Gaussian only"):
        regression_model_stats(stats, RegressionPrior(family="bernoulli"))
    with pytest.raises(ValueError, match="subsample_size"):
        regression_model_stats(stats, RegressionPrior(subsample_size=5))
    with pytest.raises(ValueError, match=r"prior.lam must be a scalar or have shape \(p,\)"):
        regression_model_stats(stats, RegressionPrior(lam=torch.ones(4)))
    bad = RegressionStats(stats.n, stats.gram, stats.xty[:2], stats.yty, stats.x_sum, stats.y_sum)
    with pytest.raises(ValueError, match="stats.xty must have shape"):
        regression_guide_stats(bad, RegressionPrior())
    nan = RegressionStats(
        stats.n, stats.gram, stats.xty, stats.yty * math.nan, stats.x_sum, stats.y_sum
    )
    with pytest.raises(ValueError, match="stats.yty contains NaN"):
        regression_model_stats(nan, RegressionPrior())


def _gated_regression(X, y, prior, lam_per_element):
    """The regression model written with :func:`l0bayes.gates.gated` (the traced primitive)."""
    intercept = pyro.param("intercept", lambda: X.new_zeros(()))
    slab = GaussianSlab(torch.as_tensor(prior.slab_precision, dtype=X.dtype), prior.slab_normalized)
    beta = gated(
        "beta",
        slab.expand([X.shape[1]]),
        lam=lam_per_element,
        groups=prior.groups,
        kl_mode=prior.kl_mode,
    )
    with pyro.plate("data", X.shape[0]):
        pyro.sample("obs", pyro.distributions.Normal(intercept + (X * beta).sum(-1), 0.5), obs=y)


@pytest.mark.parametrize("grouped", [False, True], ids=["per-feature", "groups"])
@pytest.mark.parametrize("kl_mode", ["bayes", "l0"])
def test_the_fused_regression_model_equals_the_traced_gated_model(grouped, kl_mode, float64):
    """Same parameters, same seed: the fused ``regression_model``/``regression_guide`` and the
    same model written with ``gated`` + ``AutoL0Guide`` give the same ELBO (to 1e-9)."""
    X, y = _problem(n=30, p=3)
    X = torch.cat([X, X[:, :1] + 0.3 * X[:, 1:2]], dim=1)
    groups = torch.tensor([0, 0, 1, 1]) if grouped else None
    prior = RegressionPrior(
        lam=0.7, kl_mode=kl_mode, slab_precision=1.3, slab_normalized=True, noise_scale=0.5,
        weight_guide="normal", groups=groups,
    )  # fmt: skip
    n_gates = 2 if grouped else 4
    g = torch.Generator().manual_seed(3)
    log_alpha = torch.randn(n_gates, generator=g, dtype=X.dtype)
    loc = torch.randn(4, generator=g, dtype=X.dtype)
    scale = 0.05 + torch.rand(4, generator=g, dtype=X.dtype)
    intercept = torch.tensor(0.3, dtype=X.dtype)

    def fused_loss(seed):
        pyro.clear_param_store()
        pyro.param("intercept", intercept.clone())
        pyro.param("gate_log_alpha", log_alpha.clone())
        pyro.param("weight_loc", loc.clone())
        pyro.param("weight_scale", scale.clone(), constraint=positive)
        pyro.set_rng_seed(seed)
        return TraceMeanField_ELBO().loss(regression_model, regression_guide, X, y, prior)

    def traced_loss(seed):
        pyro.clear_param_store()
        pyro.param("intercept", intercept.clone())
        lam = 0.7 / 2 if grouped else 0.7  # gated's lam is per element: a group of 2 pays 2 lam
        guide = AutoL0Guide(_gated_regression)
        guide(X, y, prior, lam)
        part = guide.gate_guide
        part.log_alpha.beta, part.loc.beta, part.scale.beta = log_alpha, loc, scale
        pyro.set_rng_seed(seed)
        return TraceMeanField_ELBO().loss(_gated_regression, guide, X, y, prior, lam)

    for seed in range(3):
        assert fused_loss(seed) == pytest.approx(traced_loss(seed), rel=1e-9)
