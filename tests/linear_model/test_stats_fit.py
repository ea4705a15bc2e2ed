"""The Gaussian IC answer from sufficient statistics: refit, criteria and certified subset
against fits on the rows (statsmodels) and a brute force over every support."""

import itertools
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.datasets import load_diabetes

from l0bayes.linear_model.preprocessing import Standardizer
from l0bayes.linear_model.stats import GaussianStats
from l0bayes.linear_model.stats_fit import (
    certified_subset,
    criteria_from_stats,
    ols_from_stats,
    stats_attributes,
    warn_exact_fit,
)

X, Y = load_diabetes(return_X_y=True)
SUPPORT = np.zeros(X.shape[1], dtype=bool)
SUPPORT[[2, 3, 8]] = True


def _rows_fit(support):
    return sm.OLS(Y, sm.add_constant(X[:, support])).fit()


def test_refit_and_criteria_equal_statsmodels_on_the_rows():
    stats = GaussianStats.from_arrays(X, Y)
    ref = _rows_fit(SUPPORT)
    coef, rss = ols_from_stats(stats, SUPPORT)
    np.testing.assert_allclose(coef[SUPPORT], ref.params[1:], rtol=1e-9)
    assert np.all(coef[~SUPPORT] == 0)
    assert rss == pytest.approx(ref.ssr, rel=1e-10)
    c = criteria_from_stats(stats, SUPPORT)
    assert c.k == 4 and c.n == len(Y)
    assert c.log_likelihood == pytest.approx(ref.llf, rel=1e-10)
    assert (c.aic, c.bic) == (pytest.approx(ref.aic, rel=1e-10), pytest.approx(ref.bic, rel=1e-10))


def test_attributes_hold_the_refit_on_the_original_scale():
    stats = GaussianStats.from_arrays(X, Y)
    std = Standardizer.fit(X, Y, "gaussian")
    weights = np.linspace(0.0, 1.0, X.shape[1])
    got = stats_attributes(stats, std, SUPPORT, weights)
    ref = _rows_fit(SUPPORT)
    assert got["intercept_"] == pytest.approx(ref.params[0], rel=1e-9)
    assert got["noise_scale_"] == pytest.approx(np.sqrt(ref.ssr / len(Y)), rel=1e-10)
    np.testing.assert_array_equal(got["inclusion_probs_"], weights)
    assert "params_" not in got and "losses_" not in got  # no relaxation ran


@pytest.mark.parametrize("criterion", ["aic", "bic"])
def test_certified_subset_is_the_brute_force_minimiser(criterion):
    Xs, ys = X[:, :8], Y
    stats = GaussianStats.from_arrays(Xs, ys)
    best = min(
        (
            getattr(criteria_from_stats(stats, np.isin(np.arange(8), cols)), criterion),
            cols,
        )
        for m in range(9)
        for cols in itertools.combinations(range(8), m)
    )
    answer = certified_subset(stats, criterion, np.zeros(8, dtype=bool), time_limit=None)
    assert answer.optimal and answer.gap == pytest.approx(0.0, abs=1e-9)
    assert np.flatnonzero(answer.support).tolist() == list(best[1])
    assert answer.ic_weights.inclusion.shape == (8,)


def test_an_exact_fit_warns_and_a_noisy_one_does_not():
    rng = np.random.default_rng(0)
    Xe = rng.standard_normal((30, 3))
    stats = GaussianStats.from_arrays(Xe, Xe[:, 0] - 2 * Xe[:, 2])
    with pytest.warns(UserWarning, match=r"exact linear function of the columns \[0, 2\]"):
        warn_exact_fit(stats, np.array([True, False, True]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_exact_fit(stats, np.array([True, False, False]))
