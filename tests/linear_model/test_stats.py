"""Tests of l0bayes.linear_model.stats: the square root of the statistics, its exact RSS and the
rounding-error bounds, checked against 50-digit references on ill-conditioned designs."""

import math

import numpy as np
import pytest

from l0bayes.linear_model.stats import GaussianStats, gram_rss_error


def gram_rss(stats, cols):
    """RSS by the fast formula y'y - g'G^{-1}g on the correlation scale, with its V."""
    G = stats.gram[np.ix_(cols, cols)]
    scale = np.sqrt(np.diag(G))
    C_inv = np.linalg.inv(G / np.outer(scale, scale))
    w = stats.xty[cols] / scale
    return stats.yty - w @ C_inv @ w, float(np.trace(C_inv))


def test_square_root_holds_the_centred_co_moments():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, (300, 4)) + 1e4
    y = X @ rng.normal(size=4) + rng.normal(size=300)
    stats = GaussianStats.from_chunks((X[a : a + 70], y[a : a + 70]) for a in range(0, 300, 70))
    Z = np.column_stack([X, y])
    Zc = Z - Z.mean(axis=0)
    np.testing.assert_allclose(stats.root.T @ stats.root, Zc.T @ Zc, rtol=1e-11)
    assert stats.root.shape == (5, 5) and np.allclose(np.tril(stats.root, -1), 0.0)
    sub = stats.columns(np.array([True, False, True, False]))
    np.testing.assert_allclose(sub.gram, (Zc.T @ Zc)[np.ix_([0, 2], [0, 2])], rtol=1e-11)
    assert sub.yty == stats.yty and sub.n == 300


def test_exact_rss_agrees_with_a_fit_on_the_rows(ill_conditioned):
    rng = np.random.default_rng(1)
    X, y = ill_conditioned(rng, 50, 5, 1e-2, 1e-2)
    stats = GaussianStats.from_arrays(X, y)
    fit = stats.exact_rss(np.array([0, 2, 3]))
    Z = np.column_stack([np.ones(50), X[:, [0, 2, 3]]])
    coef, rss = np.linalg.lstsq(Z, y, rcond=None)[:2]
    assert fit.rss == pytest.approx(float(rss[0]), rel=1e-9)
    np.testing.assert_allclose(fit.coef, coef[1:], rtol=1e-7)
    assert not fit.dependent and np.all(fit.vif >= 1.0)


@pytest.mark.parametrize("seed", range(3))
def test_error_bounds_hold_against_a_50_digit_reference(seed, ill_conditioned, reference_rss):
    """Condition numbers up to ~1e8 and 1 - R^2 down to ~1e-12: both the QR and the Gram
    bound cover the actual error."""
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(8):
        n, p = int(rng.integers(15, 45)), int(rng.integers(2, 7))
        X, y = ill_conditioned(rng, n, p, 10.0 ** rng.uniform(-8, -1), 10.0 ** rng.uniform(-6, -1))
        stats = GaussianStats.from_arrays(X, y)
        for _ in range(3):
            cols = np.sort(rng.choice(p, int(rng.integers(1, p + 1)), replace=False))
            fit = stats.exact_rss(cols)
            if fit.dependent:
                continue
            exact = reference_rss(X, y, cols)
            assert abs(fit.rss - exact) <= fit.rss_error, (fit.rss, exact, fit.rss_error)
            fast, vif_sum = gram_rss(stats, cols)
            bound = gram_rss_error(fast, stats.yty, vif_sum, p, cols.size)
            if bound < 1.0:
                assert abs(fast - exact) <= bound * fast, (fast, exact, bound)
            checked += 1
    assert checked >= 12


def test_dependent_columns_are_reported():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 3))
    X[:, 2] = X[:, 0] - 3.0 * X[:, 1]
    stats = GaussianStats.from_arrays(X, rng.normal(size=30))
    assert stats.exact_rss(np.array([0, 1, 2])).dependent
    assert not stats.exact_rss(np.array([0, 1])).dependent
    assert math.isinf(stats.exact_rss(np.array([0, 1, 2])).rss_error)


def test_views_ranges_and_standardisation_of_the_one_accumulator():
    rng = np.random.default_rng(7)
    X = rng.normal(2.0, 3.0, (80, 3))
    y = X @ np.array([1.0, -0.5, 0.0]) + rng.normal(size=80) + 4.0
    stats = GaussianStats.empty(3)
    for a in range(0, 80, 30):  # partial_fit's path: chunk by chunk
        stats.update(X[a : a + 30], y[a : a + 30])
    np.testing.assert_array_equal(stats.x_min, X.min(axis=0))
    np.testing.assert_array_equal(stats.x_max, X.max(axis=0))
    assert (stats.y_min, stats.y_max) == (y.min(), y.max())
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    d = np.sqrt((Xc**2).sum(axis=0))
    np.testing.assert_allclose(stats.corr, np.corrcoef(X, rowvar=False), rtol=1e-12)
    np.testing.assert_allclose(stats.r, Xc.T @ yc / d / math.sqrt(yc @ yc), rtol=1e-12)
    x_scale, y_scale = stats.scales()
    np.testing.assert_allclose(x_scale, X.std(axis=0), rtol=1e-12)
    assert y_scale == pytest.approx(y.std(), rel=1e-12)
    std = stats.standardized()
    Z, w = Xc / X.std(axis=0), yc / y.std()
    np.testing.assert_allclose(std.gram, Z.T @ Z, rtol=1e-11)
    np.testing.assert_allclose(std.xty, Z.T @ w, rtol=1e-11, atol=1e-11)
    assert std.yty == 80.0 and std.n == 80 and np.all(std.x_mean == 0.0)
    np.testing.assert_allclose(std.x_min, Z.min(axis=0), rtol=1e-12)
    sub = stats.columns(np.array([True, False, True]))
    np.testing.assert_array_equal(sub.x_max, X.max(axis=0)[[0, 2]])
    assert stats.columns(np.ones(3, dtype=bool)) is stats
    assert GaussianStats.of(stats) is stats


def test_checked_constructors_refuse_what_the_conjugate_priors_cannot_score():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="constant"):
        GaussianStats.from_data(X, np.ones(10))
    with pytest.raises(ValueError, match="at least 3"):
        GaussianStats.from_data(X[:2], np.arange(2.0))
    with pytest.raises(ValueError, match="n must"):
        GaussianStats.of(GaussianStats.from_arrays(X[:2], np.arange(2.0)))
    with pytest.raises(ValueError, match="yty"):
        GaussianStats.of(GaussianStats.from_arrays(X, np.ones(10)))
    with pytest.raises(ValueError, match="GaussianStats"):
        GaussianStats.of(np.eye(2))
