"""Tests of l0bayes.linear_model.selection: exact criteria against statsmodels, exhaustive and
local search."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from l0bayes.linear_model.criteria import _GaussianScorer, evaluate_supports
from l0bayes.linear_model.selection import (
    CriterionScorer,
    InformationCriteria,
    best_subset,
    information_criteria,
    local_search,
)

RTOL = 1e-6


@pytest.fixture(scope="module")
def sm():
    return pytest.importorskip("statsmodels.api")


def _design(X: np.ndarray, support: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(X)), X[:, support]])


def _gaussian_data(seed: int, n: int = 120, p: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) @ np.linalg.cholesky(0.3 + 0.7 * np.eye(p)).T
    beta = np.zeros(p)
    beta[:3] = [1.0, -0.6, 0.25]
    return X, 2.0 + X @ beta + rng.normal(size=n)


def _bernoulli_data(seed: int, n: int = 300, p: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    eta = 0.3 + 1.2 * X[:, 0] - 0.8 * X[:, 1]
    return X, (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)


def _supports(p: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    random = [rng.random(p) < 0.5 for _ in range(4)]
    return [np.zeros(p, dtype=bool), np.ones(p, dtype=bool), *random]


def _assert_matches(ic: InformationCriteria, fit, k: float) -> None:
    assert ic.k == k
    for ours, theirs in [(ic.log_likelihood, fit.llf), (ic.aic, fit.aic), (ic.bic, fit.bic)]:
        assert abs(ours - theirs) <= RTOL * abs(theirs)


@pytest.mark.parametrize("index", range(6))
def test_gaussian_criteria_match_statsmodels_ols(sm, index: int) -> None:
    X, y = _gaussian_data(seed=1)
    support = _supports(X.shape[1])[index]
    fit = sm.OLS(y, _design(X, support)).fit()
    ic = information_criteria(X, y, support)
    _assert_matches(ic, fit, fit.df_model + fit.k_constant)
    assert (ic.n, ic.family) == (len(y), "gaussian")


@pytest.mark.parametrize("index", range(6))
def test_bernoulli_criteria_match_statsmodels_logit(sm, index: int) -> None:
    X, y = _bernoulli_data(seed=2)
    support = _supports(X.shape[1], seed=1)[index]
    fit = sm.Logit(y, _design(X, support)).fit(disp=0)
    ic = information_criteria(X, y, support, family="bernoulli")
    _assert_matches(ic, fit, fit.df_model + 1)
    assert ic.family == "bernoulli"


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")
def test_collinear_support_counts_rank_like_statsmodels(sm) -> None:
    X, y = _gaussian_data(seed=3)
    X = np.column_stack([X, X[:, 0] - 2.0 * X[:, 1], np.full(len(y), 5.0)])
    support = np.zeros(X.shape[1], dtype=bool)
    support[[0, 1, 3, 6, 7]] = True  # column 6 = x0 - 2 x1, column 7 constant
    fit = sm.OLS(y, _design(X, support)).fit()
    ic = information_criteria(X, y, support)
    assert ic.k == 4
    _assert_matches(ic, fit, fit.df_model + fit.k_constant)


def test_nearly_perfect_fit_is_still_exact(sm) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 3)) * [1e4, 1.0, 1e-3] + [500.0, 0.0, 7.0]
    y = X @ [1.0, 2.0, 3.0] + 1e-3 * rng.normal(size=500)
    support = np.array([True, True, False])
    fit = sm.OLS(y, _design(X, support)).fit()
    _assert_matches(information_criteria(X, y, support), fit, 3)


def test_penalized_objective_is_half_the_criteria() -> None:
    X, y = _gaussian_data(seed=5)
    ic = information_criteria(X, y, np.array([True, False, True, False, False, False]))
    assert ic.penalized(1.0) == pytest.approx(ic.aic / 2.0, rel=1e-12)
    assert ic.penalized(0.5 * math.log(ic.n)) == pytest.approx(ic.bic / 2.0, rel=1e-12)


def test_adding_a_column_by_one_sweep_step_equals_a_direct_fit() -> None:
    X, y = _gaussian_data(seed=6, p=8)
    scorer = _GaussianScorer(X, y)
    base = np.array([[0, 3, 5], [1, 2, 7], [4, 6, 0]])
    candidates = np.array([1, 4, 7])
    grown = scorer.extend(base, candidates)
    direct = np.array([[*row, c] for row in base for c in candidates])
    loglik, k = evaluate_supports(scorer, direct)
    np.testing.assert_allclose(grown.grown_loglik.ravel(), loglik, rtol=1e-12)
    np.testing.assert_array_equal(grown.grown_k.ravel(), k)  # adding 7 to [1, 2, 7] adds nothing
    assert grown.grown_k[1, 2] == grown.k[1] == 4


def _brute_force(sm, X, y, lam: float, model) -> tuple[frozenset[int], float]:
    """Minimise -llf + lam * k over all supports with statsmodels fits."""
    best = (frozenset(), math.inf)
    for size in range(X.shape[1] + 1):
        for columns in itertools.combinations(range(X.shape[1]), size):
            support = np.isin(np.arange(X.shape[1]), columns)
            fit = model(y, _design(X, support))
            value = -fit.llf + lam * (fit.df_model + 1)
            if value < best[1]:
                best = (frozenset(columns), value)
    return best


@pytest.mark.parametrize("criterion", ["aic", "bic", 3.0])
def test_best_subset_equals_statsmodels_brute_force(sm, criterion) -> None:
    X, y = _gaussian_data(seed=7, n=80)
    lam = {"aic": 1.0, "bic": 0.5 * math.log(len(y))}.get(criterion, criterion)
    columns, value = _brute_force(sm, X, y, lam, lambda y_, Z: sm.OLS(y_, Z).fit())
    result = best_subset(X, y, criterion=criterion)
    assert frozenset(np.flatnonzero(result.support)) == columns
    assert result.criteria.penalized(lam) == pytest.approx(value, rel=1e-9)
    assert result.n_evaluated == 2**6


def test_bernoulli_best_subset_equals_statsmodels_brute_force(sm) -> None:
    X, y = _bernoulli_data(seed=8, n=200, p=4)
    lam = 0.5 * math.log(len(y))
    columns, value = _brute_force(sm, X, y, lam, lambda y_, Z: sm.Logit(y_, Z).fit(disp=0))
    result = best_subset(X, y, criterion="bic", family="bernoulli")
    assert frozenset(np.flatnonzero(result.support)) == columns
    assert result.criteria.bic / 2.0 == pytest.approx(value, rel=1e-9)


def _strong_signals(seed: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 10))
    return X, X[:, [1, 4, 7]] @ [2.0, -1.5, 1.0] + rng.normal(size=200)


@pytest.mark.parametrize("criterion", ["aic", "bic"])
@pytest.mark.parametrize("start", ["empty", "full"])
def test_local_search_reaches_best_subset_on_easy_problem(criterion: str, start: str) -> None:
    X, y = _strong_signals()
    best = best_subset(X, y, criterion=criterion)
    initial = np.full(10, start == "full")
    result = local_search(X, y, initial, criterion=criterion)
    np.testing.assert_array_equal(result.support, best.support)
    assert result.criteria == best.criteria
    assert set(np.flatnonzero(result.support)) >= {1, 4, 7}


def _neighbour_supports(support: np.ndarray) -> list[np.ndarray]:
    flips = list(support ^ np.eye(len(support), dtype=bool))
    swaps = [
        np.logical_xor(support, np.isin(np.arange(len(support)), [i, j]))
        for i in np.flatnonzero(support)
        for j in np.flatnonzero(~support)
    ]
    return flips + swaps


@pytest.mark.parametrize("seed", range(8))
def test_local_search_never_worsens_and_stops_at_a_local_optimum(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    X = rng.normal(size=(60, 8)) + rng.normal(size=(60, 1))  # correlated columns
    y = X @ rng.normal(0.0, 0.3, size=8) + rng.normal(size=60)
    start = rng.random(8) < 0.5
    lam = float(rng.uniform(0.5, 3.0))
    result = local_search(X, y, start, criterion=lam)
    start_value = information_criteria(X, y, start).penalized(lam)
    final_value = result.criteria.penalized(lam)
    assert final_value <= start_value + 1e-10
    neighbours = [
        information_criteria(X, y, s).penalized(lam) for s in _neighbour_supports(result.support)
    ]
    assert min(neighbours) >= final_value - 1e-9
    assert result.n_evaluated > len(neighbours)


def test_bernoulli_searches_skip_separated_supports() -> None:
    X, y = _bernoulli_data(seed=10, n=200, p=3)
    X[:, 2] = np.where(y == 1, 1.0, -1.0) + 0.1 * X[:, 2]  # column 2 separates y perfectly
    with pytest.raises(ValueError, match=r"does not exist.*separated.*columns \[2\]"):
        information_criteria(X, y, np.array([False, False, True]), family="bernoulli")
    for result in (
        best_subset(X, y, family="bernoulli"),
        local_search(X, y, np.array([False, False, True]), family="bernoulli"),
    ):
        assert not result.support[2]
        assert math.isfinite(result.criteria.bic)


def test_separated_logistic_problem_raises() -> None:
    rng = np.random.default_rng(11)
    x = np.r_[rng.uniform(-3.0, -0.1, 40), rng.uniform(0.1, 3.0, 40)]
    y = (x > 0).astype(float)
    x[:4] = 0.0  # quasi-complete separation: ties at zero, both classes
    y[:4] = [0.0, 1.0, 0.0, 1.0]
    X = np.column_stack([x, rng.normal(size=80)])
    with pytest.raises(ValueError, match=r"MLE does not exist.*separated.*columns \[0\]"):
        information_criteria(X, y, np.array([True, False]), family="bernoulli")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda X, y: information_criteria(np.where(X > 2, np.nan, X), y, np.ones(6, bool)),
            r"X contains \d+ NaN",
        ),
        (lambda X, y: best_subset(X, y[:-1]), "y must be 1-D with one entry per row"),
        (lambda X, y: best_subset(X[:, 0], y), "X must be a 2-D array"),
        (lambda X, y: local_search(X, y, np.ones(6, bool), family="bernoulli"), "only 0 and 1"),
        (lambda X, y: information_criteria(X, y, np.arange(3)), "boolean mask of length p = 6"),
        (lambda X, y: information_criteria(X, y, np.ones(5, bool)), "boolean mask"),
        (lambda X, y: best_subset(X, y, family="gamma"), "family must be one of"),
        (lambda X, y: best_subset(X, y, criterion="hqic"), "criterion must be"),
        (lambda X, y: best_subset(X, y, max_features=4), r"2\*\*6 = 64 models.*local_search"),
    ],
)
def test_invalid_input_raises_helpful_value_error(call, message: str) -> None:
    X, y = _gaussian_data(seed=12)
    with pytest.raises(ValueError, match=message):
        call(X, y)


def test_nan_message_names_the_array_and_the_fix() -> None:
    X, y = _gaussian_data(seed=13)
    y[5] = np.inf
    with pytest.raises(ValueError, match=r"y contains 1 NaN or infinite.*index \(5,\).*impute"):
        information_criteria(X, y, np.ones(6, dtype=bool))


def test_single_class_outcome_is_rejected() -> None:
    X, _ = _bernoulli_data(seed=14)
    with pytest.raises(ValueError, match="only the class 1"):
        best_subset(X, np.ones(len(X)), family="bernoulli")


def test_best_subset_refuses_large_p_by_default() -> None:
    rng = np.random.default_rng(15)
    X = rng.normal(size=(30, 21))
    with pytest.raises(ValueError, match=r"2\*\*21 = 2,097,152 models.*local_search"):
        best_subset(X, rng.normal(size=30))


def test_the_criterion_scorer_is_the_one_protocol_for_best_subsets_and_weights() -> None:
    from l0bayes.linear_model.ic_weights import inclusion_weights
    from l0bayes.linear_model.stats import GaussianStats
    from l0bayes.model_space import best_support, enumerate_models

    X, y = _gaussian_data(seed=9)
    scorer = CriterionScorer(X, y, "aic")
    idx, value, count = best_support(scorer)
    found = best_subset(X, y, criterion="aic")
    np.testing.assert_array_equal(idx, np.flatnonzero(found.support))
    assert -value == pytest.approx(found.criteria.aic / 2.0, rel=1e-9)
    assert count == found.n_evaluated == 2**6
    # exp(-AIC/2) normalised: the Akaike weights of ic_weights, enumerated over the scorer
    post = enumerate_models(scorer)
    weights = inclusion_weights(GaussianStats.from_arrays(X, y), "aic", found.support)
    np.testing.assert_allclose(post.inclusion_probs, weights.inclusion, atol=1e-9)
    with pytest.raises(ValueError, match="NaN"):
        CriterionScorer(np.full((5, 2), np.nan), np.arange(5.0))
