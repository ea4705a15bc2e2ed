"""Poisson and negative-binomial families, offsets and grouped gates: exact criteria against
statsmodels, group search, PIPs per group."""

import numpy as np
import pytest

from l0bayes import L0Regression
from l0bayes.linear_model.glm import fit_glm
from l0bayes.linear_model.selection import (
    best_subset,
    group_subset,
    information_criteria,
    local_search,
)

FAST = dict(n_steps=150, num_particles=4, progress=False)


def counts(family, n=300, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    offset = np.log(rng.uniform(0.5, 2.0, n))
    mu = np.exp(0.3 + X[:, 0] * 0.5 - 0.4 * X[:, 1] + offset)
    y = rng.poisson(mu) if family == "poisson" else rng.negative_binomial(2, 2 / (2 + mu))
    return X, y.astype(float), offset


def statsmodels_fit(family, y, Xs, offset):
    sm = pytest.importorskip("statsmodels.api")
    model = sm.Poisson if family == "poisson" else sm.NegativeBinomial
    return model(y, sm.add_constant(Xs), offset=offset).fit(disp=0, method="newton", maxiter=300)


@pytest.mark.parametrize("family", ["poisson", "negative_binomial"])
@pytest.mark.parametrize("support", [[0, 1], [0, 2, 3, 5], []])
def test_criteria_match_statsmodels_with_offset(family, support):
    X, y, offset = counts(family, seed=1)
    mask = np.isin(np.arange(X.shape[1]), support)
    ic = information_criteria(X, y, mask, family, offset)
    ref = statsmodels_fit(family, y, X[:, mask], offset)
    assert ic.k == len(support) + 1 + (family == "negative_binomial")
    for ours, theirs in [(ic.log_likelihood, ref.llf), (ic.aic, ref.aic), (ic.bic, ref.bic)]:
        assert ours == pytest.approx(theirs, rel=1e-6)


def test_negative_binomial_dispersion_is_statsmodels_alpha():
    X, y, offset = counts("negative_binomial", seed=2)
    fit = fit_glm(X[:, :2], y, "negative_binomial", offset)
    ref = statsmodels_fit("negative_binomial", y, X[:, :2], offset)
    assert fit.alpha == pytest.approx(ref.params[-1], rel=1e-5)
    np.testing.assert_allclose(fit.beta, ref.params[:-1], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("family", ["poisson", "negative_binomial"])
def test_estimator_bic_is_the_exhaustive_best_subset_and_matches_statsmodels(family):
    X, y, offset = counts(family, seed=3)
    est = L0Regression(family=family, penalty="bic", **FAST).fit(X, y, offset=offset)
    best = best_subset(X, y, "bic", family, offset=offset)
    np.testing.assert_array_equal(est.selected_, best.support)
    assert est.optimal_
    ic, ref = est.information_criteria(), statsmodels_fit(family, y, X[:, est.selected_], offset)
    assert ic.bic == pytest.approx(ref.bic, rel=1e-6)
    k = est.selected_.sum()
    np.testing.assert_allclose(est.coef_[est.selected_], ref.params[1 : 1 + k], rtol=1e-5)
    mean = est.predict(X, offset=offset)
    np.testing.assert_allclose(mean, ref.predict(), rtol=1e-6)


def test_local_search_reaches_the_best_subset_for_counts():
    X, y, offset = counts("poisson", seed=4)
    start = np.zeros(X.shape[1], dtype=bool)
    found = local_search(X, y, start, "bic", "poisson", offset=offset)
    np.testing.assert_array_equal(
        found.support, best_subset(X, y, "bic", "poisson", offset=offset).support
    )


def test_group_search_counts_every_column_and_is_exhaustive_for_few_groups():
    X, y, offset = counts("poisson", seed=5, p=8)
    groups = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    res, optimal = group_subset(X, y, groups, "bic", "poisson", offset)
    assert optimal
    support = res.support.reshape(4, 2)
    assert (support.all(axis=1) | ~support.any(axis=1)).all()  # groups enter whole
    # exhaustive over the 16 group subsets by hand
    values = []
    for bits in range(16):
        mask = np.repeat([(bits >> g) & 1 for g in range(4)], 2).astype(bool)
        values.append(information_criteria(X, y, mask, "poisson", offset).bic)
    assert res.criteria.bic == pytest.approx(min(values), rel=1e-10)
    assert res.criteria.k == 1 + res.support.sum()  # a group of size s costs s parameters
    local, optimal = group_subset(X, y, groups, "bic", "poisson", offset, exhaustive_limit=2)
    assert not optimal and local.criteria.bic >= res.criteria.bic - 1e-9


@pytest.mark.parametrize("penalty", ["bic", "bayes"])
def test_grouped_gates_give_equal_pips_within_a_group(penalty):
    X, y, offset = counts("poisson", seed=6)
    groups = np.array([0, 0, 1, 1, 2, 3])
    est = L0Regression(family="poisson", penalty=penalty, groups=groups, method="svi", **FAST)
    est.fit(X, y, offset=offset)
    assert est.params_["gate_log_alpha"].shape == (4,)
    pips = est.inclusion_probs_
    assert pips[0] == pips[1] and pips[2] == pips[3]
    assert est.selected_[0] == est.selected_[1] and est.selected_[2] == est.selected_[3]
    if penalty == "bayes":
        np.testing.assert_array_equal(pips, est.group_inclusion_probs_[groups])
        assert est.pip_diagnostics_["method"] == "laplace-enumerate"
    else:
        assert est.optimal_


def test_gaussian_groups_and_offset():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 6))
    offset = rng.normal(size=200)
    y = X[:, 0] + X[:, 1] + offset + rng.normal(size=200)
    est = L0Regression(penalty="bic", groups=[0, 0, 1, 1, 2, 2], **FAST).fit(X, y, offset=offset)
    np.testing.assert_array_equal(est.selected_, [True, True, False, False, False, False])
    plain = L0Regression(penalty="bic", **FAST).fit(X, y - offset)
    np.testing.assert_allclose(est.predict(X, offset=offset), plain.predict(X) + offset)


def test_bad_offset_and_groups_get_value_errors():
    X, y, offset = counts("poisson")
    with pytest.raises(ValueError, match="offset must be 1-D"):
        L0Regression(family="poisson", **FAST).fit(X, y, offset=offset[:5])
    with pytest.raises(ValueError, match="groups must be an integer array"):
        L0Regression(family="poisson", groups=[0, 1], **FAST).fit(X, y)
    with pytest.raises(ValueError, match="non-negative integer counts"):
        L0Regression(family="poisson", **FAST).fit(X, y + 0.5)
