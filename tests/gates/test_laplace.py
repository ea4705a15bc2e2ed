"""The Laplace scorer of gated models against closed forms: exact where the model is Gaussian,
nested where a slab has a latent scale, and what integrates to one left out."""

import itertools
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

from l0bayes.gates import gated
from l0bayes.gates.laplace import GatedLaplaceScorer, laplace_log_joint

PI = 0.3


def linear(X, y=None):
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=PI)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), 1.0), obs=y)


def _mvn(y, cov):
    return float(dist.MultivariateNormal(torch.zeros(len(y), dtype=cov.dtype), cov).log_prob(y))


def closed_form(X, y, gamma, loc_var=0.0):
    """y | gamma ~ N(0, I + X_g X_g' + v X_g 1 1' X_g') for N(m, 1) slabs, m ~ N(0, v)."""
    cols = [j for j, g in enumerate(gamma) if g]
    Xg = X[:, cols].double()
    cov = torch.eye(len(y), dtype=torch.float64) + Xg @ Xg.T
    cov = cov + loc_var * torch.outer(Xg.sum(1), Xg.sum(1))
    log_prior = sum(math.log(PI) if g else math.log(1 - PI) for g in gamma)
    return _mvn(y.double(), cov) + log_prior


def _data(p=3, n=40):
    torch.manual_seed(1)
    X = torch.randn(n, p)
    X[:, 1] = X[:, 0] + 0.3 * torch.randn(n)
    return X, 0.5 * X[:, 0] + 0.2 * X[:, -1] + torch.randn(n)


def test_exact_for_a_gaussian_linear_model():
    X, y = _data()
    for gamma in itertools.product([0, 1], repeat=3):
        approx = laplace_log_joint(linear, {"beta": torch.tensor(gamma)}, X, y)
        assert approx == pytest.approx(closed_form(X, y, gamma), abs=1e-8)


def shared_location(X, y=None):
    """The slab's location is a latent: a hyperparameter, integrated outside (nested)."""
    m = pyro.sample("m", dist.Normal(0.0, 1.0))
    beta = gated("beta", dist.Normal(m, 1.0).expand([X.shape[1]]), prior_inclusion=PI)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), 1.0), obs=y)


def test_nested_laplace_is_exact_when_everything_is_gaussian():
    """m is found to be a hyperparameter; inner and outer integrals are Gaussian, so the
    nested approximation is exact (up to the finite differences of the outer Hessian); with
    every gate shut, m is free and integrates to one."""
    X, y = _data()
    scorer = GatedLaplaceScorer(shared_location, (X, y))
    for gamma in itertools.product([0, 1], repeat=3):
        value = scorer.log_posterior(np.array(gamma, bool))
        assert value == pytest.approx(closed_form(X, y, gamma, loc_var=1.0), abs=1e-4)


def random_block(Z, y=None):
    """y = Z u + noise with one gate for the whole block u ~ N(0, tau^2), tau ~ HalfNormal."""
    tau = pyro.sample("tau", dist.HalfNormal(1.0))
    u = gated("u", dist.Normal(0.0, tau).expand([Z.shape[1]]), groups=[0] * Z.shape[1])
    with pyro.plate("data", Z.shape[0]):
        pyro.sample("y", dist.Normal((Z * u).sum(-1), 1.0), obs=y)


def _block_evidence(Z, y):
    """log p(y | block on): y ~ N(0, I + tau^2 Z Z'), tau integrated on a fine log grid."""
    grid = torch.linspace(-8.0, 3.0, 4001, dtype=torch.float64)
    tau = grid.exp()
    ZZ = Z.double() @ Z.double().T
    eye = torch.eye(len(y), dtype=torch.float64)
    log_lik = torch.tensor([_mvn(y.double(), eye + t**2 * ZZ) for t in tau])
    log_prior = dist.HalfNormal(torch.tensor(1.0, dtype=torch.float64)).log_prob(tau) + grid
    return float(torch.logsumexp(log_lik + log_prior, 0) + math.log(grid[1] - grid[0]))


def test_a_shut_block_drops_its_scale_and_an_open_one_integrates_it():
    torch.manual_seed(3)
    Z = torch.nn.functional.one_hot(torch.arange(60) % 20, 20).float()  # 20 groups of 3
    y = Z @ (0.8 * torch.randn(20)) + torch.randn(60)
    scorer = GatedLaplaceScorer(random_block, (Z, y))
    shut = scorer.log_posterior(np.array([False]))
    assert shut == pytest.approx(_mvn(y.double(), torch.eye(60).double()) + math.log(0.5))
    opened = scorer.log_posterior(np.array([True]))
    # the block integrated exactly given tau, then Laplace over log tau: close, not exact
    assert opened == pytest.approx(_block_evidence(Z, y) + math.log(0.5), abs=0.05)
    assert scorer.failures == 0


def random_intercepts(Z, x, y=None, log_scale=True):
    """Ungated random intercepts r ~ N(0, tau^2) per group and a gated slope; the scale is a
    real latent log tau ~ N(-1, 1) (``log_scale``) or, the same model, tau ~ LogNormal(-1, 1)."""
    if log_scale:
        tau = pyro.sample("log_tau", dist.Normal(-1.0, 1.0)).exp()
    else:
        tau = pyro.sample("tau", dist.LogNormal(-1.0, 1.0))
    with pyro.plate("groups", Z.shape[1]):
        r = pyro.sample("r", dist.Normal(0.0, tau))
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([1]))
    with pyro.plate("data", Z.shape[0]):
        pyro.sample("y", dist.Normal((Z * r).sum(-1) + beta * x, 1.0), obs=y)


def test_a_scale_on_the_log_scale_is_integrated_outside_as_a_positive_one():
    """A real-support latent that another latent's prior depends on (log tau of ungated
    random intercepts) is a hyperparameter: its joint mode with the intercepts is the funnel's
    tau -> 0, where the evidence was read as that of no random effects at all."""
    torch.manual_seed(4)
    Z = torch.nn.functional.one_hot(torch.arange(60) % 12, 12).float()
    x = torch.randn(60)
    y = Z @ (0.7 * torch.randn(12)) + 0.4 * x + torch.randn(60)
    grid = torch.linspace(-8.0, 3.0, 4001, dtype=torch.float64)
    ZZ, eye = Z.double() @ Z.double().T, torch.eye(60, dtype=torch.float64)
    log_lik = torch.tensor([_mvn(y.double(), eye + t**2 * ZZ) for t in grid.exp()])
    log_prior = dist.Normal(torch.tensor(-1.0, dtype=torch.float64), 1.0).log_prob(grid)
    exact_shut = float(torch.logsumexp(log_lik + log_prior, 0) + math.log(grid[1] - grid[0]))
    scores = {}
    for log_scale in (True, False):
        scorer = GatedLaplaceScorer(random_intercepts, (Z, x, y), {"log_scale": log_scale})
        scores[log_scale] = scorer.score(np.array([[False], [True]]))
        assert scorer.failures == 0
    np.testing.assert_allclose(scores[True], scores[False], atol=1e-6)
    # Gaussian given tau, Laplace over log tau: close, not exact (as the gated block above)
    assert scores[True][0] == pytest.approx(exact_shut + math.log(0.5), abs=0.05)


def test_gates_in_plates_and_conditioned_gates():
    def model(y=None):
        with pyro.plate("firms", 3):
            effect = gated("firm", dist.Normal(0.0, 1.0))  # one gate per firm
        gated("other", dist.Normal(0.0, 1.0).expand([2]))
        with pyro.plate("data", 3):
            pyro.sample("y", dist.Normal(effect, 1.0), obs=y)

    y = torch.tensor([2.0, 0.1, -1.5])
    scorer = GatedLaplaceScorer(model, (y,))
    assert scorer.p == 5 and [name for _, name, _ in scorer.gates] == ["firm", "other"]
    for gamma in itertools.product([0, 1], repeat=3):  # firm y_i ~ N(0, 1 + gamma_i)
        value = scorer.log_posterior(np.array(gamma + (0, 0), bool))
        zero = torch.zeros((), dtype=torch.float64)
        expected = sum(
            dist.Normal(zero, math.sqrt(1 + g)).log_prob(v)
            for g, v in zip(gamma, y.double(), strict=True)
        )
        assert value == pytest.approx(float(expected) + 5 * math.log(0.5), abs=1e-8)
    fixed = GatedLaplaceScorer(poutine.condition(model, {"other.gate": torch.ones(2)}), (y,))
    assert fixed.p == 3  # a conditioned gate is data, not a choice


def unbounded(y=None):
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([1]))
    pyro.factor("grows", b**2)  # log joint b^2 / 2: no maximum
    with pyro.plate("data", y.shape[0]):
        pyro.sample("y", dist.Normal(beta.sum(), 1.0), obs=y)


def test_a_structure_without_a_mode_scores_minus_infinity():
    scorer = GatedLaplaceScorer(unbounded, (torch.ones(10),))
    assert scorer.log_posterior(np.array([False])) == -math.inf
    assert scorer.failures == 1


def _discrete():
    pyro.sample("k", dist.Bernoulli(0.5))
    gated("b", dist.Normal(0.0, 1.0).expand([2]))


def _subsampled():
    gated("b", dist.Normal(0.0, 1.0).expand([2]))
    with pyro.plate("data", 10, subsample_size=5):
        pyro.sample("y", dist.Normal(0.0, 1.0), obs=torch.zeros(5))


@pytest.mark.parametrize(
    "model, match",
    [
        (_discrete, "discrete"),
        (_subsampled, "subsampled"),
        (lambda: pyro.sample("x", dist.Normal(0.0, 1.0)), "no gates"),
    ],
)
def test_models_it_cannot_score_are_one_clear_error(model, match):
    with pytest.raises(ValueError, match=match) as info:
        GatedLaplaceScorer(model)
    assert "\n" not in str(info.value)
