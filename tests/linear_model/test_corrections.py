"""The corrections of the guide's PIPs: enumeration, model-space chains, Laplace scores and
PSIS, each a CorrectedPosterior the estimator stores."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes

from l0bayes import L0Regression
from l0bayes.data.simulate import simulate_regression
from l0bayes.distributions import HardConcrete
from l0bayes.linear_model.corrections import guide_models, widen_top_models

FAST = dict(n_steps=150, num_particles=4, progress=False)


def test_bayes_pips_are_close_to_exact_enumeration():
    """PSIS-corrected PIPs track the exact posterior; the guide's own are kept beside them."""
    prob = simulate_regression(n=100, p=8, k=3, rho=0.5, snr=1.0, seed=1)
    kw = dict(
        penalty="bayes",
        prior="raw",
        prior_inclusion=0.3,
        slab_scale=1.0,
        noise_scale=prob.noise_scale,
    )
    exact = L0Regression(method="exact", **kw).fit(prob.X, prob.y)
    with pytest.warns(RuntimeWarning, match="psis_forced"):  # enumeration is exact at p = 8
        est = L0Regression(**kw, correction="psis", **FAST).fit(prob.X, prob.y)
    assert est.pip_diagnostics_["pip_se"] <= 0.025
    assert np.abs(est.inclusion_probs_ - exact.inclusion_probs_).mean() < 0.03
    assert est.variational_inclusion_probs_.shape == (8,)
    assert est.importance_ess_ > 50
    np.testing.assert_allclose(est.model_size_probs_.sum(), 1.0)
    np.testing.assert_allclose(est.coef_, exact.coef_, atol=0.1)


@pytest.mark.parametrize("noise_scale", [None, 0.7])
def test_raw_prior_enumerates_its_own_posterior_when_p_is_small(noise_scale):
    """``prior="raw"`` with p <= ENUMERATION_LIMIT: the default correction is the exact
    enumeration of that prior with sigma at the fitted noise_scale_ (PSIS only beyond), so
    no importance weight can miss the posterior's mass."""
    from l0bayes.linear_model.exact import exact_posterior

    prob = simulate_regression(n=60, p=7, k=3, rho=0.6, snr=1.0, seed=3)
    kw = dict(penalty="bayes", prior="raw", prior_inclusion=0.3, noise_scale=noise_scale)
    est = L0Regression(**kw, method="svi", **FAST).fit(prob.X, prob.y)
    assert est.pip_diagnostics_["method"] == "enumerate" and est.pip_diagnostics_["guide_gap"] >= 0
    exact = exact_posterior(prob.X, prob.y, noise_scale=est.noise_scale_, prior_inclusion=0.3)
    np.testing.assert_allclose(est.inclusion_probs_, exact.inclusion_probs, rtol=1e-10)
    np.testing.assert_allclose(est.model_size_probs_, exact.model_size_probs, rtol=1e-10)
    with pytest.raises(ValueError, match="σ-integrated"):
        L0Regression(**kw, correction="mc3", **FAST).fit(prob.X, prob.y)


def test_default_pips_are_the_enumerated_posterior_of_the_declared_prior():
    from l0bayes.linear_model.marginal_likelihood import (
        GPrior,
        StandardizedSlab,
        SufficientStats,
        enumerate_posterior,
    )

    X, y = load_diabetes(return_X_y=True)
    stats = SufficientStats.from_data(X, y)
    for prior, conjugate in (("slab", StandardizedSlab(1.0)), ("g", GPrior())):
        exact = enumerate_posterior(stats, conjugate, 0.5).inclusion_probs
        svi = L0Regression(penalty="bayes", prior=prior, n_steps=60, progress=False).fit(X, y)
        direct = L0Regression(penalty="bayes", prior=prior, method="exact").fit(X, y)  # no sigma
        np.testing.assert_allclose(svi.inclusion_probs_, exact, atol=1e-12)
        np.testing.assert_allclose(direct.inclusion_probs_, exact, atol=1e-12)


def test_chain_pips_match_enumeration_on_real_data_within_their_monte_carlo_error():
    from l0bayes.linear_model.marginal_likelihood import (
        StandardizedSlab,
        SufficientStats,
        enumerate_posterior,
    )

    X, y = load_diabetes(return_X_y=True)
    exact = enumerate_posterior(SufficientStats.from_data(X, y), StandardizedSlab(1.0), 0.5)
    est = L0Regression(penalty="bayes", correction="mc3", n_steps=60, progress=False)
    with warnings.catch_warnings():  # the diagnostics' own test is below; here: accuracy
        warnings.simplefilter("ignore", RuntimeWarning)
        est.fit(X, y)
    error = np.abs(est.inclusion_probs_ - exact.inclusion_probs)
    assert error.mean() <= 0.01 and error.max() <= 0.05
    assert est.pip_diagnostics_["method"] == "mc3"
    assert est.pip_diagnostics_["pip_spread"] <= 0.05 and est.pip_diagnostics_["rhat"] < 1.05


def test_chains_that_disagree_raise_a_warning_naming_the_diagnostic():
    X, y = load_diabetes(return_X_y=True)
    est = L0Regression(
        penalty="bayes", correction="mc3", chain_iterations=40, n_steps=30, progress=False
    )
    with pytest.warns(RuntimeWarning, match=r"may be wrong: (pip_spread|pip_se|ess|rhat)"):
        est.fit(X, y)
    assert est.pip_diagnostics_["warnings"]


def test_guide_models_are_seeded_and_leave_the_global_stream_alone():
    gates = HardConcrete(torch.tensor([3.0, -3.0, 0.0]), 2.0 / 3.0)
    torch.manual_seed(7)
    expected_next = torch.rand(1)
    torch.manual_seed(7)
    a = guide_models(gates, 4000, seed=1)
    assert torch.rand(1) == expected_next
    np.testing.assert_array_equal(a, guide_models(gates, 4000, seed=1))
    assert a.shape == (4000, 3) and a.dtype == bool
    q = gates.prob_nonzero.numpy()  # each column opens with its gate's P(z != 0)
    np.testing.assert_allclose(a.mean(axis=0), q, atol=4 * np.sqrt(0.25 / 4000))


def test_top_models_of_groups_are_widened_to_their_columns():
    top = [(np.array([True, False]), 0.6), (np.array([False, True]), 0.4)]
    wide = widen_top_models(top, np.array([0, 0, 1]))
    np.testing.assert_array_equal(wide[0][0], [True, True, False])
    assert [q for _, q in wide] == [0.6, 0.4]
    assert widen_top_models(top, None) == top
