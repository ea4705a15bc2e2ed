"""PSIS correction of variational inclusion probabilities against exact enumeration."""

from __future__ import annotations

import numpy as np
import pytest

from l0bayes.data.simulate import simulate_regression
from l0bayes.linear_model.exact import exact_posterior
from l0bayes.linear_model.importance import pareto_smooth, psis_inclusion_probs


def test_pareto_smooth_heavy_tail_has_finite_k_and_normalised_weights():
    rng = np.random.default_rng(0)
    log_w = rng.standard_normal(4000) * 1.5  # log-normal weights: a fittable tail
    smoothed, k_hat = pareto_smooth(log_w)
    assert np.isfinite(k_hat)
    assert np.exp(smoothed).sum() == pytest.approx(1.0, abs=1e-12)
    # smoothing only touches the tail: the body keeps its ranks and ratios
    body = log_w < np.quantile(log_w, 0.5)
    np.testing.assert_allclose(
        smoothed[body] - smoothed[body][0], log_w[body] - log_w[body][0], atol=1e-10
    )


@pytest.mark.parametrize("distinct", [1, 2, 4])
def test_pareto_smooth_tied_tail_falls_back_to_raw_weights(distinct):
    """A guide concentrated on a few models repeats their weights: the tail is tied, the
    Pareto fit is impossible (arviz returns NaN weights), and the raw weights are used."""
    rng = np.random.default_rng(1)
    top = -0.1 * np.arange(distinct)
    log_w = np.concatenate([rng.choice(top, size=400), rng.uniform(-60.0, -5.0, size=16000)])
    smoothed, k_hat = pareto_smooth(log_w)
    assert np.isnan(k_hat)
    assert np.all(np.isfinite(smoothed))
    expected = log_w - np.logaddexp.reduce(log_w)
    np.testing.assert_allclose(smoothed, expected, atol=1e-12)


def test_pareto_smooth_rejects_non_finite():
    with pytest.raises(ValueError, match="finite"):
        pareto_smooth(np.array([0.0, np.nan, -1.0, -2.0, -3.0]))


@pytest.mark.parametrize("proposal", ["uniform", "concentrated"])
def test_psis_pips_converge_to_exact(proposal):
    """With a poor (uniform) or a confident, nearly right proposal the estimate is within
    Monte Carlo error of the exact posterior; the tolerance is 5 standard errors of a
    self-normalised estimate with the reported effective sample size."""
    prob = simulate_regression(n=80, p=8, k=3, rho=0.4, snr=1.0, seed=3)
    exact = exact_posterior(prob.X, prob.y, noise_scale=prob.noise_scale, prior_inclusion=0.3)
    if proposal == "uniform":
        q = np.full(8, 0.5)
    else:
        q = np.where(exact.inclusion_probs > 0.5, 0.999, 0.001)
    res = psis_inclusion_probs(
        prob.X,
        prob.y,
        q,
        noise_scale=prob.noise_scale,
        slab_scale=1.0,
        prior_inclusion=0.3,
        num_samples=20000,
        seed=0,
    )
    assert np.all(np.isfinite(res.inclusion_probs))
    assert res.model_size_probs.sum() == pytest.approx(1.0)
    se = np.sqrt(exact.inclusion_probs * (1 - exact.inclusion_probs) / res.ess)
    np.testing.assert_array_less(np.abs(res.inclusion_probs - exact.inclusion_probs), 5 * se + 1e-3)
