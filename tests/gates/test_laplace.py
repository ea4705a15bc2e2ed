"""Laplace-weighed guide structures against the closed form of a Gaussian linear model (where
Laplace's method is exact)."""

import itertools
import math

import pyro
import pyro.distributions as dist
import torch

from l0bayes.gates import AutoL0Guide, gated
from l0bayes.gates.reference import laplace_log_joint, laplace_reweighted_pips

PI = 0.3


def model(X, y=None):
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=PI)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), 1.0), obs=y)


def log_joint(X, y, gamma):
    """Closed form: y | γ ~ N(0, I + X_γ X_γᵀ) for the N(0, 1) slab and unit noise."""
    cols = [j for j, g in enumerate(gamma) if g]
    cov = torch.eye(len(y)) + X[:, cols] @ X[:, cols].T
    log_prior = sum(math.log(PI) if g else math.log(1 - PI) for g in gamma)
    return float(dist.MultivariateNormal(torch.zeros(len(y)), cov).log_prob(y)) + log_prior


def _data(p):
    torch.manual_seed(1)
    X = torch.randn(40, p)
    X[:, 1] = X[:, 0] + 0.3 * torch.randn(40)  # correlated: the mean-field guide is biased
    return X, 0.5 * X[:, 0] + 0.2 * X[:, -1] + torch.randn(40)


def test_laplace_log_joint_is_exact_for_a_gaussian_model(float64, one_thread):
    X, y = _data(3)
    for gamma in [(0, 0, 0), (1, 1, 1)]:
        approx = laplace_log_joint(model, {"beta": torch.tensor(gamma)}, X, y)
        assert math.isclose(approx, log_joint(X, y, gamma), abs_tol=1e-6)


def test_reweighted_pips_match_the_closed_form(float64, one_thread):
    X, y = _data(3)
    guide = AutoL0Guide(model, init_log_alpha=0.0)  # unfitted: proposes every structure
    guide(X, y)
    pips, info = laplace_reweighted_pips(model, guide, X, y, num_samples=2000)
    models = list(itertools.product([0, 1], repeat=3))
    w = torch.softmax(torch.tensor([log_joint(X, y, g) for g in models]), 0)
    exact = (w[:, None] * torch.tensor(models, dtype=w.dtype)).sum(0)
    assert info["num_models"] == 8  # every structure proposed here
    assert torch.allclose(pips["beta"], exact, atol=1e-6)
