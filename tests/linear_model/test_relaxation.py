"""The SVI relaxation of L0Regression: its prior (λ, slab, minibatch), the ridge start and
the fitted gates per column."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from l0bayes import L0Regression
from l0bayes.data.simulate import simulate_regression
from l0bayes.linear_model.preprocessing import Standardizer
from l0bayes.linear_model.relaxation import (
    regression_prior,
    relax,
    ridge_start,
    slab_precision,
)


def settings(**changes):
    """The defaults of L0Regression's parameters (a short relaxation), with ``changes``."""
    fast = dict(n_steps=80, num_particles=2, progress=False)
    return SimpleNamespace(**{**L0Regression().get_params(), **fast, **changes})


STD = Standardizer(np.zeros(2), np.array([2.0, 0.5]), 0.0, 3.0)


def test_ridge_start_solves_the_ridge_normal_equations():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    expected = np.linalg.solve(X.T @ X + 2.0 * np.eye(3), X.T @ (y - y.mean()))
    np.testing.assert_allclose(ridge_start(Xt, yt, "gaussian", alpha=2.0), expected)
    counts = torch.as_tensor(rng.poisson(3.0, size=40).astype(float))
    target = np.log1p(counts.numpy())
    expected = np.linalg.solve(X.T @ X + np.eye(3), X.T @ (target - target.mean()))
    np.testing.assert_allclose(ridge_start(Xt, counts, "poisson"), expected)


@pytest.mark.parametrize(
    "prior, slab_scale, expected",
    [
        ("raw", 2.0, (3.0 / (2.0 * np.array([2.0, 0.5]))) ** 2),  # (s_y / (scale s_x))^2
        ("slab", 2.0, 0.25),
        ("g", 2.0, 1.0),
    ],
)
def test_slab_precision_on_the_standardised_coefficients(prior, slab_scale, expected):
    s = settings(penalty="bayes", prior=prior, slab_scale=slab_scale)
    np.testing.assert_allclose(slab_precision(s, STD), expected)


def test_the_prior_carries_lambda_and_the_minibatch():
    like = torch.zeros(2, dtype=torch.float64)
    bic = regression_prior(settings(batch_size=10), STD, (100, 2), like, None)
    assert bic.lam == pytest.approx(0.5 * math.log(100)) and bic.kl_mode == "l0"
    assert bic.subsample_size == 10 and bic.weight_guide == "delta"
    assert float(bic.slab_precision) == 0.0
    full = regression_prior(settings(batch_size=500), STD, (100, 2), like, None)
    assert full.subsample_size is None  # a batch as large as the data is the full batch
    bayes = regression_prior(
        settings(penalty="bayes", prior_inclusion=("beta", 2.0, 3.0)), STD, (100, 2), like, None
    )
    assert bayes.kl_mode == "bayes" and bayes.inclusion_beta == (2.0, 3.0)
    assert bayes.weight_guide == "normal" and bayes.slab_normalized


def test_relax_gives_one_probability_per_column_with_groups():
    prob = simulate_regression(n=80, p=4, k=2, seed=0)
    groups = np.array([0, 0, 1, 1])
    relaxed = relax(settings(groups=groups), prob.X, prob.y, None, groups)
    assert relaxed.gate_probs.shape == (2,)
    np.testing.assert_array_equal(relaxed.column_probs, relaxed.gate_probs[groups])
    assert len(relaxed.result.losses) == 80
    coef, intercept = relaxed.coef(groups)
    assert coef.shape == (4,) and math.isfinite(intercept)
