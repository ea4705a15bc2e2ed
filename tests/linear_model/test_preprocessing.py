"""The data boundary of L0Regression: layout errors naming X or y, columns that cannot be
standardised, constant columns left out, and the standardisation itself."""

import numpy as np
import pytest
import scipy.sparse

from l0bayes import L0Regression
from l0bayes.linear_model.preprocessing import (
    Standardizer,
    check_column_scales,
    check_layout,
    parses_as_float,
    warn_constant_columns,
)

FAST = dict(n_steps=150, num_particles=4, progress=False)


def test_badly_scaled_features_are_standardised():
    """Feature scales from 1e-3 to 1e3: the optimiser sees standardised columns, so the fit is
    the one on unit-scale features, and the coefficients come back on X's own scale (the OLS
    refit of the selected columns, here by statsmodels)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(5)
    n, scales = 200, np.logspace(-3, 3, 7)
    Z = rng.standard_normal((n, scales.size))
    effect = np.array([1.0, 0.0, -1.0, 0.0, 0.8, 0.0, 0.0])  # per standard deviation of x_j
    y = 5.0 + Z @ effect + 0.5 * rng.standard_normal(n)
    X = Z * scales
    est = L0Regression(**FAST, method="svi").fit(X, y)
    unit = L0Regression(**FAST, method="svi").fit(Z, y)
    np.testing.assert_array_equal(est.selected_, effect != 0)
    np.testing.assert_array_equal(est.relaxed_support_, effect != 0)  # SVI itself, no polish
    np.testing.assert_allclose(est.inclusion_probs_, unit.inclusion_probs_, atol=1e-6)
    np.testing.assert_allclose(est.coef_ * scales, unit.coef_, rtol=1e-8, atol=1e-12)
    ols = sm.OLS(y, sm.add_constant(X[:, est.selected_])).fit()
    np.testing.assert_allclose(est.coef_[est.selected_], ols.params[1:], rtol=1e-7)
    assert est.intercept_ == pytest.approx(ols.params[0], rel=1e-9)
    assert np.all(est.coef_[~est.selected_] == 0)
    np.testing.assert_allclose(est.predict(X), ols.fittedvalues, rtol=1e-9)


def test_standardizer_maps_standardised_coefficients_back_to_x():
    """A fit on standardised columns predicts as its coefficients on X's scale do."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3)) * [0.01, 1.0, 100.0] + [5.0, -2.0, 1e3]
    y = rng.normal(size=50) * 4.0 + 10.0
    std = Standardizer.fit(X, y, "gaussian")
    Xs = (X - std.x_mean) / std.x_scale
    np.testing.assert_allclose((Xs**2).sum(axis=0), 50.0)  # x*_j' x*_j = n
    coef_std, intercept_std = np.array([0.3, -0.2, 0.5]), 0.1
    coef, intercept = std.coef_to_original(coef_std, intercept_std)
    fitted_std = std.y_mean + std.y_scale * (intercept_std + Xs @ coef_std)
    np.testing.assert_allclose(intercept + X @ coef, fitted_std, rtol=1e-10)
    assert Standardizer.fit(X, (y > 10).astype(float), "bernoulli").y_scale == 1.0


@pytest.mark.parametrize(
    "X, y, error, match",
    [
        (scipy.sparse.eye(3).tocsr(), np.ones(3), TypeError, "sparse"),
        (np.array([["a", "b"], ["c", "d"]]), np.ones(2), ValueError, "X holds text"),
        (np.ones(3), np.ones(3), ValueError, "X must be a 2-D array"),
        (np.ones((3, 2)), np.ones((3, 2)), ValueError, "y must be 1-D"),
        (np.ones((3, 2)), np.ones(4), ValueError, "X has 3 rows but y has 4 entries"),
        (np.ones((3, 2)), np.array([1.0, np.nan, 2.0]), ValueError, "y"),
    ],
)
def test_check_layout_names_x_or_y(X, y, error, match):
    with pytest.raises(error, match=match):
        check_layout(X, y)


def test_numbers_as_text_parse():
    assert parses_as_float(np.array(["1.5", "2"])) and not parses_as_float(np.array(["red"]))
    check_layout(np.array([["1", "2"], ["3", "4"], ["5", "7"]]), np.ones(3))  # no error


def test_column_scales_outside_float64s_range_are_refused():
    keep = np.array([True, True])
    check_column_scales(keep, np.array([0.0, -1.0]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"columns \['b'\] cannot be standardised"):
        check_column_scales(
            keep, np.array([0.0, 0.0]), np.array([1.0, 1e-150]), np.array(["a", "b"])
        )
    with pytest.raises(ValueError, match="every column of X is constant"):
        check_column_scales(np.zeros(2, bool), np.zeros(2), np.zeros(2))


def test_constant_columns_are_named_in_one_warning():
    with pytest.warns(UserWarning, match=r"constant columns \[1\]"):
        warn_constant_columns(np.array([True, False]))
    warn_constant_columns(np.array([True, True]))  # none: silent (filterwarnings = error)
