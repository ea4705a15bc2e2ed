"""Priors on model size: the Poisson-binomial, intervals, and the Beta mapping."""

import itertools
from math import comb

import numpy as np
import pytest
from scipy.special import betaln

from l0bayes.linear_model.model_size import (
    beta_from_model_size,
    check_prior_inclusion,
    log_prior_by_size,
    pmf_interval,
    poisson_binomial,
)


def test_poisson_binomial_matches_enumeration():
    probs = np.array([0.1, 0.7, 0.5, 0.95, 0.02])
    brute = np.zeros(6)
    for bits in itertools.product([0, 1], repeat=5):
        b = np.array(bits)
        brute[b.sum()] += np.prod(np.where(b == 1, probs, 1 - probs))
    np.testing.assert_allclose(poisson_binomial(probs), brute, atol=1e-14)


def test_pmf_interval_is_equal_tailed():
    pmf = np.array([0.02, 0.08, 0.4, 0.4, 0.08, 0.02])
    assert pmf_interval(pmf) == (1, 4)
    assert pmf_interval(np.array([0.0, 1.0, 0.0])) == (1, 1)


def test_beta_from_model_size_has_the_requested_mean_and_concentration():
    _, a, b = beta_from_model_size(3, 2.0, 12)
    assert a + b == pytest.approx(2.0)
    assert a / (a + b) == pytest.approx(3 / 12)


def test_beta_binomial_prior_sums_to_one_over_models():
    p, a, b = 7, 1.5, 3.0
    logp = log_prior_by_size(("beta", a, b), p)
    counts = np.array([comb(p, k) for k in range(p + 1)])
    assert (counts * np.exp(logp)).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(logp[2], betaln(a + 2, b + 5) - betaln(a, b))


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, ("beta", 0, 1), ("gamma", 1, 1), ("beta", 1)])
def test_bad_prior_inclusion_is_rejected(bad):
    with pytest.raises(ValueError, match="prior_inclusion"):
        check_prior_inclusion(bad)
