"""Tests for ``l0bayes.linear_model.varbvs`` (CAVI spike-and-slab regression) against exact
enumeration.

Tolerances:

* ELBO monotonicity: each update is an exact block maximiser, so in exact arithmetic F never
  decreases; in float64 F is a sum of O(n + p) terms, each with relative error ~1e-16, so a
  sweep may "lose" at most ~1e-12 (1 + |F|) to rounding.
* Orthogonal design: the posterior factorises and lies in the variational family, so the PIPs
  and the ELBO equal the exact ones up to rounding (1e-10, 1e-8 nats).
* Random design, rho = 0, n = 200: the mean-field error shrinks with the sample correlations
  (~1/sqrt(n) = 0.07); we hold it to the issue's target for PIP mean absolute error, 0.03.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit, logit

from l0bayes.data.simulate import simulate_regression
from l0bayes.linear_model.exact import exact_posterior
from l0bayes.linear_model.varbvs import _elbo, _State, varbvs

PI, SLAB = 0.3, 1.0


def _same_prior(prob, **kw):
    """varbvs and exact enumeration under one prior: known sigma, slab sd SLAB on X's scale."""
    sigma = prob.noise_scale
    slab_var = (SLAB / sigma) ** 2
    fit = varbvs(prob.X, prob.y, prior_inclusion=PI, slab_var=slab_var, noise_var=sigma**2, **kw)
    exact = exact_posterior(prob.X, prob.y, noise_scale=sigma, slab_scale=SLAB, prior_inclusion=PI)
    return fit, exact


def _orthogonal_problem(n: int = 60, p: int = 6, seed: int = 0):
    """Centred columns that are exactly orthogonal (shifted by a constant: the intercept)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, p))
    q, _ = np.linalg.qr(Z - Z.mean(axis=0))
    X = q * math.sqrt(n) + rng.uniform(-2, 2, p)
    beta = np.array([0.5, -0.3] + [0.0] * (p - 2))
    y = 1.0 + X @ beta + 0.5 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("order", ["cyclic", "random"])
@pytest.mark.parametrize("noise_var", [None, 4.0])
def test_elbo_never_decreases(order, noise_var):
    prob = simulate_regression(n=100, p=15, k=4, rho=0.6, snr=1.0, seed=3)
    fit = varbvs(prob.X, prob.y, prior_inclusion=PI, noise_var=noise_var, order=order, tol=0)
    gains = np.diff(fit.elbo)
    assert fit.n_iter > 5  # correlated design: several sweeps, so the check has teeth
    assert gains.min() >= -1e-12 * (1 + np.abs(fit.elbo).max())


def test_converged_fit_is_a_coordinatewise_maximum():
    """Perturbing any one variational parameter (or sigma^2) at the optimum lowers the ELBO."""
    prob = simulate_regression(n=80, p=6, k=2, rho=0.5, snr=1.0, seed=1)
    fit = varbvs(prob.X, prob.y, prior_inclusion=PI, tol=1e-12)
    Xc, yc = prob.X - prob.X.mean(0), prob.y - prob.y.mean()
    d = (Xc**2).sum(0)

    def elbo(alpha, mu, s2, sigma2):
        state = _State(alpha, mu, s2, sigma2, Xc @ (alpha * mu))
        return _elbo(state, yc, d, PI, fit.slab_var)

    base = [fit.inclusion_probs, fit.mu, fit.s2, fit.noise_var]
    best = elbo(*base)
    assert best == pytest.approx(fit.elbo[-1], abs=1e-9)
    moves = (  # one small step per parameter kind, staying inside its domain
        lambda a, h: expit(logit(a) + h),
        lambda m, h: m + h * (1 + abs(m)),
        lambda s, h: s * math.exp(h),
        lambda v, h: v * math.exp(h),
    )
    for which, move in enumerate(moves):
        for j in range(6) if which < 3 else [None]:
            for h in (-1e-4, 1e-4):
                args = [a.copy() if isinstance(a, np.ndarray) else a for a in base]
                if j is None:
                    args[which] = move(args[which], h)
                else:
                    args[which][j] = move(args[which][j], h)
                assert elbo(*args) < best + 1e-10, (which, j, h)


def test_orthogonal_design_is_exact():
    X, y = _orthogonal_problem()
    sigma, slab = 0.5, 0.7
    fit = varbvs(X, y, prior_inclusion=PI, slab_var=(slab / sigma) ** 2, noise_var=sigma**2)
    exact = exact_posterior(X, y, noise_scale=sigma, slab_scale=slab, prior_inclusion=PI)
    np.testing.assert_allclose(fit.inclusion_probs, exact.inclusion_probs, atol=1e-10)
    np.testing.assert_allclose(fit.coef, exact.coef_mean, atol=1e-10)
    assert fit.intercept == pytest.approx(exact.intercept, abs=1e-10)
    assert fit.elbo[-1] == pytest.approx(exact.log_evidence, abs=1e-8)


def test_pips_close_to_exact_on_uncorrelated_design():
    prob = simulate_regression(n=200, p=8, k=3, rho=0.0, snr=1.0, seed=0)
    fit, exact = _same_prior(prob)
    assert np.abs(fit.inclusion_probs - exact.inclusion_probs).mean() < 0.03
    # the ELBO is a lower bound on the evidence; the gap is KL(q || posterior) >= 0
    assert fit.elbo[-1] <= exact.log_evidence + 1e-8


def test_elbo_bounds_evidence_on_correlated_design():
    fit, exact = _same_prior(simulate_regression(n=60, p=8, k=3, rho=0.7, snr=1.0, seed=2))
    assert fit.elbo[-1] <= exact.log_evidence + 1e-8


def test_recovers_clear_sparse_support_and_noise():
    n = 200
    prob = simulate_regression(n=n, p=20, k=3, rho=0.0, snr=4.0, seed=0)
    fit = varbvs(prob.X, prob.y, prior_inclusion=0.1)
    np.testing.assert_array_equal(fit.selected, prob.support)
    assert fit.converged
    # sigma^2-hat / sigma^2 ~ chi2_(n-4) / (n-1): sd sqrt(2/n); allow 4 sd
    assert abs(fit.noise_var / prob.noise_scale**2 - 1) < 4 * math.sqrt(2 / n)
    # cyclic and random sweeps reach the same (unique, well-separated) optimum
    other = varbvs(prob.X, prob.y, prior_inclusion=0.1, order="random", seed=5)
    np.testing.assert_allclose(other.inclusion_probs, fit.inclusion_probs, atol=1e-6)


def test_predict_and_warning_when_not_converged():
    prob = simulate_regression(n=50, p=10, k=3, rho=0.8, snr=1.0, seed=0)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        fit = varbvs(prob.X, prob.y, max_iter=1, tol=0)
    assert not fit.converged and fit.n_iter == 1
    np.testing.assert_allclose(fit.predict(prob.X), fit.intercept + prob.X @ fit.coef)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(prior_inclusion=1.0), "prior_inclusion"),
        (dict(slab_var=0.0), "slab_var"),
        (dict(noise_var=-1.0), "noise_var"),
        (dict(order="backwards"), "order"),
        (dict(tol=-1.0), "tol"),
        (dict(max_iter=0), "max_iter"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    X, y = _orthogonal_problem()
    with pytest.raises(ValueError, match=match):
        varbvs(X, y, **kwargs)


def test_bad_data_shapes_and_values():
    X, y = _orthogonal_problem()
    with pytest.raises(ValueError, match="one entry per row"):
        varbvs(X, y[:-1])
    with pytest.raises(ValueError, match="constant"):  # sigma^2 would be estimated as 0
        varbvs(X, np.ones_like(y))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        varbvs(X, y)
