"""Laplace-approximated marginal likelihoods of GLMs: against brute-force integration, MC3
against enumeration, the estimator's correction dispatch, and (slow) NUTS with enumerated
gates."""

import numpy as np
import pytest
from scipy.special import logsumexp

from l0bayes import L0Regression
from l0bayes.linear_model.glm import family_of
from l0bayes.linear_model.laplace import LaplaceScorer, laplace_enumerate, laplace_mc3
from l0bayes.linear_model.model_space import diagnose

FAST = dict(n_steps=150, num_particles=4, progress=False)


def glm_data(family, n=200, p=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    eta = 0.2 + 0.9 * X[:, 0] - 0.5 * X[:, 1]
    if family == "bernoulli":
        return X, (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return X, rng.poisson(np.exp(eta)).astype(float)


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_laplace_matches_brute_force_integration(family):
    """Intercept (flat prior) and one slope (N(0, 1) on the standardised column), on a grid."""
    X, y = glm_data(family, n=80, p=2, seed=1)
    X = X[:, :1]
    scorer = LaplaceScorer(X, y, family, slab_scale=1.0)
    lik, x = family_of(family), scorer.Xs[:, 0]
    b, w = np.linspace(-3, 3, 301), np.linspace(-3, 4, 351)
    loglik = np.array([[lik.loglik(bi + wj * x, y) for wj in w] for bi in b])
    log_joint = loglik - 0.5 * w[None, :] ** 2 - 0.5 * np.log(2 * np.pi)
    brute = logsumexp(log_joint) + np.log((b[1] - b[0]) * (w[1] - w[0]))
    assert scorer.log_marginal(np.array([True])) == pytest.approx(brute, abs=0.03)
    brute0 = logsumexp([lik.loglik(np.full(len(y), bi), y) for bi in b]) + np.log(b[1] - b[0])
    assert scorer.log_marginal(np.array([False])) == pytest.approx(brute0, abs=0.01)


def test_mc3_matches_enumeration_with_the_same_scores():
    X, y = glm_data("bernoulli", p=6, seed=2)
    scorer = LaplaceScorer(X, y, "bernoulli", model_prior=0.3)
    exact = laplace_enumerate(scorer)
    chains = laplace_mc3(scorer, n_iter=3000, seed=1)
    np.testing.assert_allclose(chains.inclusion_probs, exact.inclusion_probs, atol=0.02)
    assert exact.model_size_probs.sum() == pytest.approx(1.0)
    assert diagnose(chains) == []


def test_negative_binomial_and_grouped_scores_are_finite_and_enumerate():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 4))
    mu = np.exp(0.5 + 0.6 * X[:, 0])
    y = rng.negative_binomial(3, 3 / (3 + mu)).astype(float)
    scorer = LaplaceScorer(X, y, "negative_binomial", groups=np.array([0, 0, 1, 2]))
    post = laplace_enumerate(scorer)
    assert post.inclusion_probs.shape == (3,) and post.inclusion_probs[0] > 0.95


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_estimator_bayes_uses_the_laplace_enumeration(family):
    X, y = glm_data(family, p=5, seed=4)
    exact = laplace_enumerate(LaplaceScorer(X, y, family, slab_scale=1.0))
    for method in ("auto", "svi"):  # auto: the enumeration without SVI
        est = L0Regression(family=family, penalty="bayes", method=method, **FAST).fit(X, y)
        assert est.pip_diagnostics_["method"] == "laplace-enumerate"
        np.testing.assert_allclose(est.inclusion_probs_, exact.inclusion_probs, atol=1e-12)
        assert est.model_size_probs_.sum() == pytest.approx(1.0)
        assert hasattr(est, "variational_inclusion_probs_") == (method == "svi")
        assert hasattr(est, "losses_") == (method == "svi")


def test_estimator_mc3_path_stores_diagnostics():
    X, y = glm_data("poisson", p=5, seed=5)
    est = L0Regression(
        family="poisson", penalty="bayes", correction="mc3", chain_iterations=4000, **FAST
    ).fit(X, y)
    diag = est.pip_diagnostics_
    assert diag["method"] == "laplace-mc3" and {"rhat", "ess", "pip_spread"} <= set(diag)
    exact = laplace_enumerate(LaplaceScorer(X, y, "poisson"))
    np.testing.assert_allclose(est.inclusion_probs_, exact.inclusion_probs, atol=0.05)


def test_short_chains_warn_naming_the_diagnostic(monkeypatch):
    X, y = glm_data("bernoulli", p=5, seed=6)
    est = L0Regression(
        family="bernoulli", penalty="bayes", correction="mc3", chain_iterations=10, **FAST
    )
    with pytest.warns(RuntimeWarning) as caught:
        est.fit(X, y)
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("the inclusion probabilities may be wrong: ess") for m in messages)


@pytest.mark.slow
def test_laplace_pips_agree_with_nuts_on_enumerated_gates():
    torch = pytest.importorskip("torch")
    import pyro
    import pyro.distributions as dist

    from l0bayes.gates import gated
    from l0bayes.gates.reference import reference_pips

    X, y = glm_data("bernoulli", n=150, p=3, seed=7)
    Xs = (X - X.mean(0)) / X.std(0)

    def model(Xt, yt=None):
        b = pyro.sample("b", dist.Normal(0.0, 10.0))  # ~ flat on the scale of the likelihood
        beta = gated("beta", dist.Normal(0.0, 1.0).expand([Xt.shape[1]]), prior_inclusion=0.5)
        with pyro.plate("data", Xt.shape[0]):
            pyro.sample("y", dist.Bernoulli(logits=b + (Xt * beta).sum(-1)), obs=yt)

    dtype = torch.get_default_dtype()
    Xt, yt = torch.as_tensor(Xs, dtype=dtype), torch.as_tensor(y, dtype=dtype)
    ref = reference_pips(model, Xt, yt, num_samples=300)
    lap = laplace_enumerate(LaplaceScorer(X, y, "bernoulli")).inclusion_probs
    np.testing.assert_allclose(lap, ref["beta"].numpy(), atol=0.05)
