"""The posterior over gate structures: the enumeration against brute force, the chains against
the enumeration, the missed-mass climb, and warnings instead of wrong numbers."""

import itertools
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

from l0bayes.gates import AutoL0Guide, GatedLaplaceScorer, gated
from l0bayes.gates.posterior import missed_mass, posterior_inclusion_probs

PI = 0.3


def linear(X, y=None):
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=PI)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), 1.0), obs=y)


def _data(p, n=40, seed=1):
    torch.manual_seed(seed)
    X = torch.randn(n, p)
    X[:, 1] = X[:, 0] + 0.3 * torch.randn(n)  # correlated: the mean-field guide is biased
    return X, 0.5 * X[:, 0] + 0.2 * X[:, -1] + torch.randn(n)


def brute_force(X, y):
    """PIPs over every structure: y | gamma ~ N(0, I + X_g X_g') with the prior pi^|g|..."""
    p, X, y = X.shape[1], X.double(), y.double()
    models = list(itertools.product([0, 1], repeat=p))
    logs = []
    for gamma in models:
        Xg = X[:, [j for j in range(p) if gamma[j]]]
        cov = torch.eye(len(y), dtype=torch.float64) + Xg @ Xg.T
        lik = dist.MultivariateNormal(torch.zeros(len(y), dtype=torch.float64), cov).log_prob(y)
        logs.append(float(lik) + sum(math.log(PI if g else 1 - PI) for g in gamma))
    w = torch.softmax(torch.tensor(logs), 0)
    return (w[:, None] * torch.tensor(models, dtype=torch.float64)).sum(0)


def _guide(X, y, steps=0):
    guide = AutoL0Guide(linear)
    guide(X, y)
    svi = pyro.infer.SVI(linear, guide, pyro.optim.Adam({"lr": 0.05}), pyro.infer.Trace_ELBO())
    for _ in range(steps):
        svi.step(X, y)
    return guide


def test_enumeration_equals_brute_force():
    X, y = _data(4)
    guide = _guide(X, y)
    post = guide.posterior_inclusion_probs(linear, X, y, progress=False)
    assert torch.allclose(post.inclusion_probs["beta"], brute_force(X, y), atol=1e-7)
    assert post.pip_diagnostics["method"] == "laplace-enumerate"
    assert post.pip_diagnostics["n_models"] == 16 and post.pip_diagnostics["warnings"] == []
    assert post.model_size_probs.sum() == pytest.approx(1.0)
    best, prob = post.top_models[0]
    assert best["beta"].dtype == torch.bool and 0 < prob <= 1
    assert post.variational_inclusion_probs["beta"].shape == (4,)


def test_chains_agree_with_the_enumeration():
    X, y = _data(5, seed=2)
    guide = _guide(X, y, steps=100)
    post = posterior_inclusion_probs(linear, guide, X, y, method="chains", progress=False)
    assert post.pip_diagnostics["method"] == "laplace-chains"
    assert {"pip_spread", "rhat", "ess", "guide_gap", "warnings"} <= set(post.pip_diagnostics)
    error = (post.inclusion_probs["beta"] - brute_force(X, y)).abs().max()
    assert error < 0.03 or post.pip_diagnostics["warnings"], error


def test_a_stuck_guide_does_not_stick_the_posterior():
    """The guide's gates forced shut (log alpha = -10): its PIPs read 0, the posterior's do
    not, and the gap between the guide's best draw and the best structure is reported."""
    X, y = _data(4)
    y = y + 1.5 * X[:, 2]
    guide = _guide(X, y)
    guide.gate_guide.log_alpha.beta = torch.full((4,), -10.0)
    post = guide.posterior_inclusion_probs(linear, X, y, progress=False)
    assert post.variational_inclusion_probs["beta"].max() < 1e-3
    assert post.inclusion_probs["beta"][2] > 0.99
    assert post.pip_diagnostics["guide_gap"] > 10


def test_the_missed_mass_climb_warns_by_name():
    X, y = _data(4)
    y = y + 2.0 * X[:, 2] - 2.0 * X[:, 3]
    scorer = GatedLaplaceScorer(linear, (X, y))
    poor = np.zeros(4, bool)
    message = missed_mass(scorer, poor, scorer.log_posterior(poor))
    assert message is not None and message.startswith("missed_mass:")
    best = np.array([True, False, True, True])
    assert missed_mass(scorer, best, scorer.log_posterior(best)) is None


def unbounded(y=None):
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([2]))
    pyro.factor("grows", b**2 * beta.abs().sum().detach().ne(0))  # no mode when a gate opens
    with pyro.plate("data", y.shape[0]):
        pyro.sample("y", dist.Normal(b + beta.sum(), 1.0), obs=y)


def test_structures_without_a_mode_warn_instead_of_crashing():
    y = torch.randn(10)
    guide = AutoL0Guide(unbounded)
    guide(y)
    with pytest.warns(RuntimeWarning, match="may be wrong: laplace:"):
        post = guide.posterior_inclusion_probs(unbounded, y, progress=False)
    assert post.pip_diagnostics["laplace_failures"] == 3  # every structure with an open gate
    assert torch.allclose(post.inclusion_probs["beta"], torch.zeros(2, dtype=torch.float64))


def test_bad_options_are_one_clear_error():
    X, y = _data(3)
    guide = _guide(X, y)
    with pytest.raises(ValueError, match="method"):
        guide.posterior_inclusion_probs(linear, X, y, method="exact")
