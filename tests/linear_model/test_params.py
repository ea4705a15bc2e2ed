"""L0Regression's hyper-parameters: their checks (one ValueError naming the argument) and
what they decide (λ, the prior on inclusion, the method and the PIP correction)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch.distributions as tdist
from sklearn.datasets import load_diabetes

from l0bayes import L0Regression
from l0bayes.linear_model import params
from l0bayes.linear_model.marginal_likelihood import GPrior, HyperGPrior, StandardizedSlab

FAST = dict(n_steps=150, num_particles=4, progress=False)


def settings(**changes):
    """The defaults of L0Regression's parameters, with ``changes``."""
    return SimpleNamespace(**{**L0Regression().get_params(), **changes})


def test_expected_model_size_sets_prior_inclusion(simulated):
    X, y, _ = simulated(n=60, p=6)
    est = L0Regression(penalty="bayes", expected_model_size=2, **FAST).fit(X, y)
    assert est.lam_ == pytest.approx(math.log((1 - 1 / 3) / (1 / 3)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(penalty="bic", prior_inclusion=("beta", 1, 1)), "needs penalty='bayes'"),
        (dict(penalty="bayes", concentration=2.0), "concentration needs expected_model_size"),
        (dict(penalty="bayes", prior_inclusion=("beta", -1, 1)), "a > 0"),
        (dict(penalty="bayes", expected_model_size=2, concentration=0.0), "concentration"),
        (dict(penalty="bayes", importance_samples=-1), "importance_samples"),
    ],
)
def test_model_size_prior_errors(kwargs, match, simulated):
    X, y, _ = simulated(n=30, p=4)
    with pytest.raises(ValueError, match=match):
        L0Regression(**{**FAST, **kwargs}).fit(X, y)


def test_a_prior_that_integrates_sigma_refuses_a_noise_scale():
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="integrates the noise scale out"):
        L0Regression(penalty="bayes", noise_scale=1.0).fit(X, y)


@pytest.mark.parametrize(
    "penalty, n, pi, expected",
    [
        ("aic", 100, 0.5, (1.0, "l0")),
        ("aicc", 100, 0.5, (1.0, "l0")),
        ("bic", 100, 0.5, (0.5 * math.log(100), "l0")),
        (2.5, 100, 0.5, (2.5, "l0")),
        ("bayes", 100, 0.2, (math.log(0.8 / 0.2), "bayes")),
        ("bayes", 100, ("beta", 1.0, 3.0), (math.log(0.75 / 0.25), "bayes")),  # at the mean
    ],
)
def test_code_cost_is_lambda_per_coefficient(penalty, n, pi, expected):
    lam, mode = params.code_cost(penalty, n, pi)
    assert lam == pytest.approx(expected[0]) and mode == expected[1]


@pytest.mark.parametrize(
    "penalty, match",
    [("mdl", "one of"), (-1.0, ">= 0"), (math.inf, "finite"), (True, "finite"), (1e16, "<= 1e")],
)
def test_check_penalty_names_the_problem(penalty, match):
    with pytest.raises(ValueError, match=match):
        params.check_penalty(penalty)


def test_default_prior_inclusion_is_a_half_or_beta_binomial_beyond_n_minus_2():
    assert params.prior_inclusion(settings(), 5, 100) == 0.5
    assert params.prior_inclusion(settings(penalty="bayes"), 5, 100) == 0.5
    assert params.prior_inclusion(settings(penalty="bayes"), 99, 100) == ("beta", 1.0, 1.0)
    assert params.prior_inclusion(settings(expected_model_size=2), 8) == 0.25
    beta = params.prior_inclusion(settings(prior_inclusion=tdist.Beta(2.0, 5.0)), 8)
    assert beta == ("beta", 2.0, 5.0)


def test_conjugate_prior_of_each_slab():
    assert isinstance(params.conjugate_prior(settings(prior="slab")), StandardizedSlab)
    assert isinstance(params.conjugate_prior(settings(prior="g")), GPrior)
    assert params.conjugate_prior(settings(prior="hyper-g/n")) == HyperGPrior(per_n=True)


@pytest.mark.parametrize(
    "changes, p, method, correction",
    [
        (dict(), 10, "svi", "enumerate"),  # an IC penalty: no correction runs
        (dict(penalty="bayes"), 16, "exact", "enumerate"),
        (dict(penalty="bayes"), 17, "svi", "mc3"),
        (dict(penalty="bayes", prior="raw"), 10, "svi", "enumerate"),  # σ from the guide
        (dict(penalty="bayes", prior="raw", noise_scale=1.0), 20, "exact", "enumerate"),
        (dict(penalty="bayes", prior="raw"), 21, "svi", "psis"),
        (dict(penalty="bayes", prior="raw", importance_samples=0), 21, "svi", "none"),
        (dict(penalty="bayes", family="bernoulli"), 12, "exact", "laplace"),
        (dict(penalty="bayes", family="bernoulli"), 13, "svi", "laplace"),
        (dict(penalty="bayes", correction="mc3"), 5, "svi", "mc3"),
        (dict(penalty="bayes", method="svi"), 5, "svi", "enumerate"),
    ],
)
def test_method_and_correction_decisions(changes, p, method, correction):
    s = settings(**changes)
    assert params.method(s, p) == method
    assert params.correction(s, p) == correction


def test_groups_count_as_one_gate_each():
    s = settings(penalty="bayes", groups=np.array([0, 0, 1, 1, 2]))
    assert params.n_gates(s.groups, 5) == 3 and params.n_gates(None, 5) == 5


def test_the_search_criterion_is_ebic_when_p_reaches_n():
    assert params.search_criterion("bic", 10, 10) == "ebic"
    assert params.search_criterion("aic", 10, 9) == "aic"
    assert params.search_criterion("aicc", 10, 20) == "aicc"
    assert params.search_criterion(3, 10, 20) == 3.0


@pytest.mark.parametrize(
    "changes, G, match",
    [
        (dict(), 5, "enumerates the posterior of penalty='bayes'"),
        (dict(penalty="bayes"), 21, "G = 21 gates > 20"),
        (dict(penalty="bayes", prior="raw"), 5, "needs a known noise_scale"),
        (dict(penalty="bayes", prior="raw", groups=[0, 1]), 2, "single columns"),
    ],
)
def test_check_exact_refuses_what_it_cannot_enumerate(changes, G, match):
    with pytest.raises(ValueError, match=match):
        params.check_exact(settings(**changes), G)


def test_fit_chunks_needs_the_stats_path():
    assert params.fits_from_stats(settings())
    for changes in (
        dict(penalty="bayes"),
        dict(batch_size=8),
        dict(groups=[0]),
        dict(method="exact"),
    ):
        assert not params.fits_from_stats(settings(**changes))
        with pytest.raises(ValueError, match="partial_fit fits from sufficient statistics"):
            params.check_stats_path(settings(**changes), "partial_fit")
