"""PSIS correction of variational inclusion probabilities against exact enumeration."""

from __future__ import annotations

import numpy as np
import pytest

from l0bayes.data.simulate import simulate_regression
from l0bayes.linear_model.exact import exact_posterior
from l0bayes.linear_model.importance import (
    MISSED_MODE_NATS,
    hill_climb,
    pareto_smooth,
    psis_inclusion_probs,
)


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


# ------------------------------------------------------------------ against a wrong answer
# Tolerances. A self-normalised importance estimate of a probability P (a PIP, or P(size = k))
# from weights with effective sample size ESS = 1 / sum(w_s^2) has standard error
# se = sqrt(P (1 - P) / ESS) (Kish's approximation of the delta-method variance
# sum_s w_s^2 (f_s - P)^2; Owen 2013, "Monte Carlo theory, methods and examples", ch. 9).
# Each estimate must lie within Z = 5 such standard errors of the exact value, plus 1e-3 for
# the probabilities near 0 or 1 whose se vanishes: a normal error passes with probability
# 1 - 6e-7, and over 4 seeds the largest error measured with the correct code was 3.6 se.
# The ESS must be at least MIN_ESS so that a collapsed estimate cannot pass on a huge se.
Z, ABS, MIN_ESS, DRAWS = 5.0, 1e-3, 400.0, 50_000


def _pair_problem():
    """x0 and x1 nearly substitute for each other (corr 0.96); x0 and x4 carry the signal."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 8))
    X[:, 1] = X[:, 0] + 0.3 * rng.normal(size=80)
    y = 0.6 * X[:, 0] + 0.5 * X[:, 4] + rng.normal(size=80)
    return X, y


def _proposal(kind, exact_pips):
    """``uniform``: 1/2 everywhere; ``swapped``: the mean-field failure, confident (0.999) in
    the exact median model except that it picked x1 instead of x0."""
    if kind == "uniform":
        return np.full(exact_pips.size, 0.5)
    q = np.where(exact_pips > 0.5, 0.999, 0.001)
    assert exact_pips[0] > 0.5 > exact_pips[1]
    q[[0, 1]] = [0.001, 0.999]
    return q


def _within_mc_error(estimate, exact, ess):
    se = np.sqrt(exact * (1.0 - exact) / ess)
    np.testing.assert_array_less(np.abs(estimate - exact), Z * se + ABS)


@pytest.mark.parametrize("kind", ["uniform", "swapped"])
def test_psis_pips_and_model_sizes_match_enumeration(kind):
    """PIPs and the model-size posterior against ``exact_posterior`` of the same model. Fails
    when the model sizes are counted without the importance weights (the uniform proposal's
    unweighted sizes are Binomial(8, 1/2), total variation ~0.6 from exact) and when the
    proposal is not clipped to [delta, 1 - delta] (the swapped guide then never draws x0: PIP
    error ~0.6, more than 30 se)."""
    X, y = _pair_problem()
    exact = exact_posterior(X, y, noise_scale=1.0, prior_inclusion=0.3)
    res = psis_inclusion_probs(
        X,
        y,
        _proposal(kind, exact.inclusion_probs),
        noise_scale=1.0,
        slab_scale=1.0,
        prior_inclusion=0.3,
        num_samples=DRAWS,
        seed=1,
    )
    assert res.ess >= MIN_ESS
    _within_mc_error(res.inclusion_probs, exact.inclusion_probs, res.ess)
    _within_mc_error(res.model_size_probs, exact.model_size_probs, res.ess)
    # the summed per-size bound, as a total variation distance
    se = np.sqrt(exact.model_size_probs * (1 - exact.model_size_probs) / res.ess)
    tv = 0.5 * np.abs(res.model_size_probs - exact.model_size_probs).sum()
    assert tv <= 0.5 * np.sum(Z * se + ABS)


def test_confidently_wrong_guide_is_corrected_by_the_clipped_proposal():
    """The library's default floor (delta = min(0.1, 1/p)) lets the swapped guide draw x0
    with probability 0.1 per draw, so the PIP of x0 is recovered; with a floor of 1e-6 it is
    drawn about 0.05 times in 50,000 draws and the estimate stays confidently wrong."""
    X, y = _pair_problem()
    exact = exact_posterior(X, y, noise_scale=1.0, prior_inclusion=0.3).inclusion_probs
    kwargs = dict(noise_scale=1.0, slab_scale=1.0, prior_inclusion=0.3, num_samples=DRAWS)
    q = _proposal("swapped", exact)
    clipped = psis_inclusion_probs(X, y, q, seed=2, **kwargs)
    assert clipped.ess >= MIN_ESS
    _within_mc_error(clipped.inclusion_probs, exact, clipped.ess)
    unclipped = psis_inclusion_probs(X, y, q, seed=2, floor=1e-6, **kwargs)
    assert np.abs(unclipped.inclusion_probs - exact).max() > 0.3


def test_hill_climb_from_a_guide_that_missed_the_mode_finds_it():
    """The unclipped swapped guide never draws x0 (PIP error > 0.3 above, and no k-hat or ESS
    alarm); a best-improvement search from its best draw climbs (by a swap x1 -> x0) to the
    exact posterior mode, which is more than twice as probable as every draw: the estimator's
    ``guide_missed_mass`` warning. From the mode itself the climb stays put."""
    X, y = _pair_problem()
    exact = exact_posterior(X, y, noise_scale=1.0, prior_inclusion=0.3)
    kwargs = dict(noise_scale=1.0, slab_scale=1.0, prior_inclusion=0.3)
    q = _proposal("swapped", exact.inclusion_probs)
    wrong = psis_inclusion_probs(X, y, q, seed=2, floor=1e-6, num_samples=DRAWS, **kwargs)
    assert not wrong.best_draw[0]
    top, _ = exact.top_models[0]
    mode_joint = exact.log_evidence + exact.log_model_probs.max()
    climbed, value = hill_climb(X, y, wrong.best_draw, **kwargs)
    np.testing.assert_array_equal(climbed, top)
    assert value == pytest.approx(mode_joint, abs=1e-8)
    assert value - wrong.best_log_joint > MISSED_MODE_NATS
    stay, again = hill_climb(X, y, top, **kwargs)
    np.testing.assert_array_equal(stay, top)
    assert again == pytest.approx(value, abs=1e-10)


def test_pip_standard_errors_match_the_spread_over_seeds():
    """``pip_se`` (the delta-method sd of a self-normalised estimate) against the sd of the
    PIPs over 40 independent runs of 2,000 draws from a uniform proposal: the ratio of the two
    for every feature within [0.6, 1.6] (the sd of 40 runs is itself uncertain by about
    1/sqrt(2 * 39) = 11%, and the ratio of two such estimates by about 16%: 3 of those)."""
    X, y = _pair_problem()
    kwargs = dict(noise_scale=1.0, slab_scale=1.0, prior_inclusion=0.3, num_samples=2000)
    runs = [psis_inclusion_probs(X, y, np.full(8, 0.5), seed=s, **kwargs) for s in range(40)]
    spread = np.std([r.inclusion_probs for r in runs], axis=0, ddof=1)
    predicted = np.mean([r.pip_se for r in runs], axis=0)
    assert np.all((predicted / spread > 0.6) & (predicted / spread < 1.6)), predicted / spread
