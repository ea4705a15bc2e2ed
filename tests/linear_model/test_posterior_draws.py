"""Draws from the posterior a fit reports: models with the reported probabilities, then the
coefficients given the model, each against an independent computation."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from l0bayes import L0Regression
from l0bayes.data.simulate import simulate_regression
from l0bayes.linear_model.exact import exact_posterior
from l0bayes.linear_model.marginal_likelihood import StandardizedSlab, SufficientStats
from l0bayes.linear_model.model_size import log_prior_by_size
from l0bayes.linear_model.model_space import (
    ConjugateScorer,
    effective_sample_size,
    enumerate_models,
)
from l0bayes.linear_model.posterior_draws import gibbs_models, posterior_draws

FAST = dict(n_steps=100, num_particles=2, progress=False)
DRAWS = 4000
Z = 4.5  # standard errors: the largest of p deviations stays inside with probability ~1e-4


def within_monte_carlo_error(freq, probs, ess):
    """|freq - π| <= Z sd, the sd of a mean of ``ess`` independent Bernoulli(π) draws."""
    se = np.sqrt(np.clip(probs * (1 - probs), 1e-4, None) / ess)
    return np.abs(freq - probs) <= Z * se


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


@pytest.mark.parametrize(
    "kwargs",
    [dict(prior_inclusion=0.5), dict(prior="hyper-g"), dict(prior="g", expected_model_size=3)],
)
def test_bayes_gate_frequencies_are_the_reported_pips(diabetes, kwargs):
    """Issue 28: the export's P(gate != 0) was the raw guide's (0.098 for a PIP of 0.68)."""
    X, y = diabetes
    est = L0Regression(penalty="bayes", **kwargs, **FAST).fit(X, y)
    draws = posterior_draws(est, X, y, DRAWS, seed=1)
    assert draws.source == "enumeration"
    freq = draws.gate.mean(axis=0)
    assert within_monte_carlo_error(freq, est.inclusion_probs_, DRAWS).all()
    assert ((draws.coef != 0) == (draws.gate == 1)).all()


@pytest.mark.parametrize("penalty", ["aic", "bic"])
def test_ic_gate_frequencies_are_the_criterion_weights(diabetes, penalty):
    X, y = diabetes
    est = L0Regression(penalty=penalty, **FAST).fit(X, y)
    draws = posterior_draws(est, X, y, DRAWS, seed=2)
    assert draws.source == "ic_weights"
    assert within_monte_carlo_error(draws.gate.mean(0), est.ic_weights_.inclusion, DRAWS).all()


def test_raw_prior_model_average_is_the_exact_posterior_mean():
    """E[γ β | y] over the draws against exact enumeration's model-averaged coefficients."""
    prob = simulate_regression(n=80, p=6, k=3, snr=2.0, seed=3)
    kw = dict(penalty="bayes", prior="raw", noise_scale=1.0, slab_scale=2.0)
    est = L0Regression(**kw, **FAST).fit(prob.X, prob.y)
    exact = exact_posterior(prob.X, prob.y, noise_scale=1.0, slab_scale=2.0)
    draws = posterior_draws(est, prob.X, prob.y, DRAWS, seed=4)
    assert draws.noise_scale is None  # σ is fixed by this prior
    se = draws.coef.std(axis=0) / np.sqrt(DRAWS)
    assert (np.abs(draws.coef.mean(0) - exact.coef_mean) <= Z * se + 1e-12).all()


def strong_signal(seed=5):
    """Three strong columns: every model drawn is the full model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 3)) * [1.0, 5.0, 0.2] + 10.0
    y = X @ [1.0, -0.3, 8.0] + 2.0 + rng.standard_normal(120)
    return X, y


def test_slab_coefficients_given_the_model_are_the_ridge_posterior():
    """Standardised slab with σ integrated: given the full model, E[β | y] is ridge regression
    on the standardised columns with penalty 1/s² (sklearn's Ridge, independent code), and
    E[b | y] its intercept."""
    X, y = strong_signal()
    est = L0Regression(penalty="bayes", slab_scale=0.3, **FAST).fit(X, y)
    draws = posterior_draws(est, X, y, DRAWS, seed=6)
    full = (draws.gate == 1).all(axis=1)
    assert full.mean() > 0.9
    coef, intercept = draws.coef[full], draws.intercept[full]
    sd = X.std(axis=0)
    ridge = Ridge(alpha=1 / 0.3**2).fit(X / sd, y)
    se = coef.std(axis=0) / np.sqrt(len(coef))
    assert (np.abs(coef.mean(0) - ridge.coef_ / sd) <= Z * se).all()
    assert abs(intercept.mean() - ridge.intercept_) <= Z * intercept.std() / np.sqrt(len(coef))


def test_g_prior_shrinks_ols_by_g_over_one_plus_g():
    X, y = strong_signal()
    est = L0Regression(penalty="bayes", prior="g", **FAST).fit(X, y)
    draws = posterior_draws(est, X, y, DRAWS, seed=7)
    ols = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)[0][1:]
    n = len(y)
    se = draws.coef.std(axis=0) / np.sqrt(DRAWS)
    assert (np.abs(draws.coef.mean(0) - n / (n + 1) * ols) <= Z * se).all()


def test_ic_coefficients_given_the_model_center_on_ols_with_its_standard_errors():
    sm = pytest.importorskip("statsmodels.api")
    X, y = strong_signal()
    est = L0Regression(penalty="bic", **FAST).fit(X, y)
    draws = posterior_draws(est, X, y, DRAWS, seed=8)
    assert (draws.gate == 1).all()  # the full model has all the weight
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    se = draws.coef.std(axis=0) / np.sqrt(DRAWS)
    assert (np.abs(draws.coef.mean(0) - ols.params[1:]) <= Z * se).all()
    # flat-prior posterior sd = OLS standard error * sqrt((n - k - 1) / (n - k - 3))
    np.testing.assert_allclose(draws.coef.std(axis=0), ols.bse[1:], rtol=0.08)
    np.testing.assert_allclose(draws.intercept.std(), ols.bse[0], rtol=0.08)


def test_glm_draws_center_on_the_refit_of_the_selected_model():
    sm = pytest.importorskip("statsmodels.api")
    prob = simulate_regression(n=300, p=4, k=2, snr=3.0, seed=9, family="bernoulli")
    est = L0Regression(family="bernoulli", penalty="bic", **FAST).fit(prob.X, prob.y)
    draws = posterior_draws(est, prob.X, prob.y, DRAWS, seed=10)
    assert draws.source == "selected" and (draws.gate == est.selected_).all()
    cols = np.flatnonzero(est.selected_)
    logit = sm.Logit(prob.y, sm.add_constant(prob.X[:, cols])).fit(disp=0)
    se = draws.coef[:, cols].std(axis=0) / np.sqrt(DRAWS)
    assert (np.abs(draws.coef[:, cols].mean(0) - logit.params[1:]) <= Z * se).all()
    np.testing.assert_allclose(draws.coef[:, cols].std(axis=0), logit.bse[1:], rtol=0.08)


def test_gibbs_draws_match_the_enumeration():
    """The sampler of fits too large to enumerate, checked where enumeration is possible;
    the tolerance uses each PIP's effective sample size."""
    prob = simulate_regression(n=100, p=8, k=3, snr=1.0, rho=0.5, seed=11)
    stats = SufficientStats.from_data(prob.X, prob.y)
    scorer = ConjugateScorer(stats, StandardizedSlab(), log_prior_by_size(0.5, 8))
    exact = enumerate_models(scorer).inclusion_probs
    models = gibbs_models(scorer, np.zeros(8, bool), 3000, seed=12)
    freq = models.mean(axis=0)
    for j in range(8):
        ess = effective_sample_size(models[None, :, j].astype(float))
        assert within_monte_carlo_error(freq[j], exact[j], ess), (j, freq[j], exact[j], ess)
