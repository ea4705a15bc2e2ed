"""``l0bayes.linear_model.path``: the λ path with its AIC/BIC rows, errors, exhaustive comparison,
figure."""

import math

import numpy as np
import pytest

from l0bayes.data.simulate import simulate_regression
from l0bayes.linear_model.path import default_lambdas, lambda_path
from l0bayes.linear_model.selection import refit_coefficients
from l0bayes.viz.plotting import plot_lambda_path, save_figure

N_FIT, N_HELD = 150, 100


PROB = simulate_regression(n=N_FIT + 2 * N_HELD, p=6, k=2, rho=0.3, snr=2.0, seed=1)
FIT, VAL, TEST = slice(0, N_FIT), slice(N_FIT, N_FIT + N_HELD), slice(N_FIT + N_HELD, None)


@pytest.fixture(scope="module")
def path():
    X, y, fit, val, test = PROB.X, PROB.y, FIT, VAL, TEST
    return lambda_path(
        X[fit], y[fit], [0.05, 20.0], X_val=X[val], y_val=y[val], X_test=X[test],
        y_test=y[test], n_steps=300, num_particles=4,
    )  # fmt: skip


def test_grid_contains_aic_and_bic():
    grid = default_lambdas(400, num=5)
    assert 1.0 in grid and 0.5 * math.log(400) in grid and np.all(np.diff(grid) > 0)


def test_rows_mark_aic_and_bic_and_match_exhaustive_search(path):
    lams = [r.lam for r in path.rows]
    assert lams == sorted(lams) and len(lams) == 4  # 0.05, 1, log(150)/2, 20
    assert path.selected("aic").lam == 1.0
    assert path.selected("BIC").lam == pytest.approx(0.5 * math.log(N_FIT))
    # p = 6: the exact polish reaches the global optimum of -loglik + lambda k
    assert path.matches_best_subset("AIC") and path.matches_best_subset("BIC")
    # for global optima, a larger code cost never selects a larger model
    assert np.all(np.diff([r.k for r in path.rows]) <= 0)


def test_criteria_and_errors_are_consistent(path):
    cols = path.as_dict()
    np.testing.assert_allclose(cols["aic"], -2 * cols["log_likelihood"] + 2 * cols["k"])
    np.testing.assert_allclose(
        cols["bic"], -2 * cols["log_likelihood"] + math.log(N_FIT) * cols["k"]
    )
    np.testing.assert_array_equal(cols["k"], cols["support"].sum(axis=1) + 1)
    # IC penalties refit the selected columns by least squares: recompute the errors so
    for row in path.rows:
        for part, error in ((VAL, row.val_error), (TEST, row.test_error)):
            intercept, coef = refit_coefficients(PROB.X[FIT][:, row.support], PROB.y[FIT])
            pred = intercept + PROB.X[part][:, row.support] @ coef
            assert error == pytest.approx(np.mean((PROB.y[part] - pred) ** 2), rel=1e-8)


def test_table_records_and_figure(path, tmp_path):
    table = path.to_markdown()
    assert "| AIC |" in table and "| BIC |" in table and "BIC (exhaustive)" in table
    records = path.records()
    assert len(records) == 4 and isinstance(records[0]["support"], str)
    png, pdf = save_figure(plot_lambda_path(path), tmp_path / "path")
    assert png.stat().st_size > 10_000 and pdf.stat().st_size > 1_000


def test_errors_are_nan_without_held_out_data_and_no_exhaustive_above_limit():
    prob = simulate_regression(n=80, p=4, k=1, snr=4.0, seed=0)
    path = lambda_path(prob.X, prob.y, [], max_exhaustive=3, n_steps=100, num_particles=2)
    assert [r.criterion for r in path.rows] == ["AIC", "BIC"]
    assert all(math.isnan(r.val_error) and math.isnan(r.test_error) for r in path.rows)
    assert path.best_subset_aic is None and path.matches_best_subset("AIC") is None


def test_plot_lambda_path_moved_to_viz_and_old_names_warn():
    """Fits draw no figures: the path's figure lives in viz; the old names still resolve."""
    import l0bayes.linear_model
    import l0bayes.linear_model.path

    for module in (l0bayes.linear_model, l0bayes.linear_model.path):
        with pytest.warns(DeprecationWarning, match="moved to l0bayes.viz.plot_lambda_path"):
            assert module.plot_lambda_path is plot_lambda_path
        with pytest.raises(AttributeError, match=module.__name__):
            module.no_such_name  # noqa: B018
