"""Conjugate marginal likelihoods against brute-force integration, formulas and enumeration."""

import itertools
import math

import numpy as np
import pytest
from scipy.integrate import dblquad, quad
from scipy.special import logsumexp

from l0bayes.linear_model.marginal_likelihood import (
    GPrior,
    HyperGPrior,
    StandardizedSlab,
    SufficientStats,
    enumerate_posterior,
)

PRIORS = [
    GPrior(),
    GPrior(g=7.0),
    HyperGPrior(),
    HyperGPrior(a=4.0, per_n=True),
    StandardizedSlab(),
]


def _data(n=30, p=6, seed=0, rho=0.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[:, 1] = rho * X[:, 0] + math.sqrt(1 - rho**2) * X[:, 1]
    X *= rng.uniform(0.1, 10, size=p)
    last = X[:, min(3, p - 1)]
    y = 3.0 + X[:, 0] / X[:, 0].std() - 0.7 * last / last.std() + rng.normal(size=n)
    return X, y


def _r2(X, y, cols):
    Xc, yc = X - X.mean(0), y - y.mean()
    if not cols:
        return 0.0
    coef = np.linalg.lstsq(Xc[:, cols], yc, rcond=None)[0]
    return 1.0 - np.sum((yc - Xc[:, cols] @ coef) ** 2) / (yc @ yc)


def _g_bf(r2, k, n, g):
    """BVS.md's g-prior Bayes factor, written via R²."""
    return 0.5 * (n - 1 - k) * math.log1p(g) - 0.5 * (n - 1) * math.log1p(g * (1 - r2))


def _log_integrand_sigma(Xg, yc, cov_beta):
    r"""Brute force: :math:`\log \int\!\!\int \sigma^{-(n-1)} e^{-|y - X\beta|^2/2\sigma^2}
    N(\beta; 0, \sigma^2 V) \sigma^{-2} d\beta\, d\sigma^2` for ``k = 1`` by 2-D quadrature."""
    n = len(yc)
    x = Xg[:, 0]

    def log_f(beta, log_s2):
        s2 = math.exp(log_s2)
        resid = yc - beta * x
        log_lik = -0.5 * (n - 1) * log_s2 - resid @ resid / (2 * s2)
        log_prior = -0.5 * math.log(2 * math.pi * s2 * cov_beta) - beta**2 / (2 * s2 * cov_beta)
        return log_lik + log_prior  # d sigma^2 / sigma^2 = d log sigma^2

    b_hat, sd = float(x @ yc / (x @ x)), math.sqrt(yc @ yc / (x @ x))
    ref = log_f(b_hat, math.log(yc @ yc / n))
    lo, hi = min(0.0, b_hat) - 15 * sd, max(0.0, b_hat) + 15 * sd
    val = dblquad(lambda b, t: math.exp(log_f(b, t) - ref), -15, 15, lo, hi, epsrel=1e-11)[0]
    return math.log(val) + ref


def _log_null(yc):
    n = len(yc)

    def f(t):
        return math.exp(-0.5 * (n - 1) * t - yc @ yc / (2 * math.exp(t)) + 0.5 * (n - 1))

    return math.log(quad(f, -20, 20, epsrel=1e-12, limit=200)[0]) - 0.5 * (n - 1)


@pytest.mark.parametrize("prior", [GPrior(), StandardizedSlab(scale=0.7)])
def test_one_column_against_brute_force_integration_over_beta_and_sigma(prior):
    X, y = _data(n=8, p=2, seed=3)
    Xc, yc = X - X.mean(0), y - y.mean()
    x = Xc[:, [1]]
    n = len(y)
    if isinstance(prior, GPrior):
        cov = n / float(x[:, 0] @ x[:, 0])  # g (x'x)^-1 with g = n
    else:
        cov = prior.scale**2 * n / float(x[:, 0] @ x[:, 0])  # s^2 on z with z'z = n
    brute = _log_integrand_sigma(x, yc, cov) - _log_null(yc)
    stats = SufficientStats.from_data(X, y)
    assert prior.log_marginal(stats, np.array([1])) == pytest.approx(brute, abs=1e-6)


def test_slab_two_columns_against_sigma_quadrature():
    X, y = _data(n=9, p=3, seed=4)
    n = len(y)
    Xc, yc = X - X.mean(0), y - y.mean()
    Z = Xc[:, :2] / np.sqrt((Xc[:, :2] ** 2).mean(0))  # z'z = n
    s = 1.3
    cov = np.eye(n) + s**2 * Z @ Z.T  # marginal covariance / sigma^2 (beta integrated)
    _, logdet = np.linalg.slogdet(cov)
    # the null direction 1 is an eigenvector with eigenvalue 1 in both models: its factor cancels
    quadform = yc @ np.linalg.solve(cov, yc)

    def log_model(qf, ld):
        def f(t):
            return math.exp(-0.5 * (n - 1) * t - qf / (2 * math.exp(t)) + 0.5 * (n - 1))

        return math.log(quad(f, -20, 20, epsrel=1e-12, limit=200)[0]) - 0.5 * (n - 1) - 0.5 * ld

    brute = log_model(quadform, logdet) - log_model(yc @ yc, 0.0)
    stats = SufficientStats.from_data(X, y)
    assert StandardizedSlab(s).log_marginal(stats, np.array([0, 1])) == pytest.approx(brute, 1e-8)


@pytest.mark.parametrize("cols", [[0], [0, 3], [1, 2, 4, 5]])
def test_g_prior_matches_bvs_formula_via_r2(cols):
    X, y = _data()
    stats = SufficientStats.from_data(X, y)
    for g in (None, 3.0):
        expected = _g_bf(_r2(X, y, cols), len(cols), len(y), len(y) if g is None else g)
        assert GPrior(g).log_marginal(stats, np.array(cols)) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("per_n", [False, True])
@pytest.mark.parametrize("n", [10, 200, 50_000])
def test_hyper_g_against_quadrature_of_g_prior_bayes_factor(per_n, n):
    for r2, k, a in [(0.3, 1, 3.0), (0.9, 2, 4.0), (1e-4, 3, 3.0), (0.05, 5, 2.5)]:
        m = n if per_n else 1.0

        total, ref = _integrate_over_g(r2, k, n, a, m)
        prior = HyperGPrior(a=a, per_n=per_n)
        got = prior.log_bayes_factor(np.array([1 - r2]), np.zeros(1), np.array([k]), n)[0]
        assert got == pytest.approx(math.log(total) + ref, abs=1e-7)


def _integrate_over_g(r2, k, n, a, m):
    def log_f(g):
        return _g_bf(r2, k, n, g) + math.log((a - 2) / (2 * m)) - a / 2 * math.log1p(g / m)

    ts = np.linspace(-30, 40, 4001)
    vals = np.array([log_f(math.exp(t)) + t for t in ts])
    ref, mode = vals.max(), ts[vals.argmax()]

    def f(t):
        return math.exp(log_f(math.exp(t)) + t - ref)

    pieces = [(-60, mode), (mode, 60)]
    return sum(quad(f, lo, hi, epsrel=1e-12, limit=500)[0] for lo, hi in pieces), ref


def _brute_force_pips(X, y, prior_pi, log_bf):
    p = X.shape[1]
    log_post, masks = [], []
    for bits in itertools.product([0, 1], repeat=p):
        cols = [j for j in range(p) if bits[j]]
        k = len(cols)
        log_post.append(log_bf(cols) + k * math.log(prior_pi) + (p - k) * math.log1p(-prior_pi))
        masks.append(bits)
    w = np.exp(np.array(log_post) - logsumexp(log_post))
    masks = np.array(masks, dtype=float)
    sizes = np.bincount(masks.sum(axis=1).astype(int), weights=w, minlength=p + 1)
    return w @ masks, logsumexp(log_post), sizes


def _slab_bf(X, y, cols, s):
    n = len(y)
    Xc, yc = X - X.mean(0), y - y.mean()
    Z = Xc[:, cols] / np.sqrt((Xc[:, cols] ** 2).mean(0))
    A = Z.T @ Z + np.eye(len(cols)) / s**2
    fit = yc @ Z @ np.linalg.solve(A, Z.T @ yc) if cols else 0.0
    ld = np.linalg.slogdet(np.eye(len(cols)) + s**2 * Z.T @ Z)[1]
    return -0.5 * ld - 0.5 * (n - 1) * math.log((yc @ yc - fit) / (yc @ yc))


@pytest.mark.parametrize("which", ["g", "slab"])
def test_enumeration_matches_independent_loop(which):
    X, y = _data(n=25, p=7, seed=2, rho=0.9)
    n = len(y)
    if which == "g":
        prior, bf = GPrior(), lambda c: _g_bf(_r2(X, y, c), len(c), n, n)
    else:
        prior, bf = StandardizedSlab(0.5), lambda c: _slab_bf(X, y, c, 0.5)
    expected, log_ev, sizes = _brute_force_pips(X, y, 0.3, bf)
    result = enumerate_posterior(SufficientStats.from_data(X, y), prior, 0.3)
    np.testing.assert_allclose(result.inclusion_probs, expected, atol=1e-10)
    assert result.log_evidence == pytest.approx(log_ev, abs=1e-9)
    np.testing.assert_allclose(result.model_size_probs, sizes, atol=1e-10)
    assert result.top_models[0][1] == pytest.approx(np.exp(result.log_posterior.max()))


@pytest.mark.parametrize("prior", PRIORS, ids=repr)
def test_enumeration_is_unit_free(prior):
    X, y = _data(n=40, p=8, seed=5)
    base = enumerate_posterior(SufficientStats.from_data(X, y), prior, ("beta", 1.0, 1.0))
    X2 = X.copy()
    X2[:, 2] *= 1000.0
    X2[:, 5] /= 1000.0
    for Xs, ys in [(X2, y), (X, 1000.0 * y - 5.0)]:
        other = enumerate_posterior(SufficientStats.from_data(Xs, ys), prior, ("beta", 1.0, 1.0))
        np.testing.assert_allclose(other.inclusion_probs, base.inclusion_probs, atol=1e-8)


def test_rank_deficient_supports_have_probability_zero_never_nan():
    X, y = _data(n=12, p=5, seed=6)
    X[:, 4] = 2.0 * X[:, 0] - X[:, 1]  # exact collinearity
    X[:, 3] = 1.0  # constant column
    stats = SufficientStats.from_data(X, y)
    for prior in PRIORS:
        result = enumerate_posterior(stats, prior)
        assert np.all(np.isfinite(result.inclusion_probs))
        masks = np.array(list(itertools.product([False, True], repeat=5)))
        lm = prior.log_marginal(stats, masks)
        assert not np.isnan(lm).any()
        if prior.full_rank:
            assert np.all(lm[masks[:, 3]] == -np.inf)
            assert np.all(lm[masks[:, [0, 1, 4]].all(1)] == -np.inf)
            assert result.inclusion_probs[3] == 0.0
        else:  # the slab is proper everywhere; a zero column changes nothing
            assert np.all(np.isfinite(lm))
            assert result.inclusion_probs[3] == pytest.approx(0.5)


def test_the_model_space_ends_at_n_minus_2_columns_for_every_prior():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 5)), rng.normal(size=6)
    stats = SufficientStats.from_data(X, y)
    for prior in (GPrior(), HyperGPrior(), StandardizedSlab()):
        assert np.isfinite(prior.log_marginal(stats, np.arange(4)))  # k = n - 2
        assert prior.log_marginal(stats, np.arange(5)) == -np.inf  # k = n - 1
    post = enumerate_posterior(stats, StandardizedSlab())
    assert post.model_size_probs[5] == 0.0 and post.model_size_probs[4] > 0.0


def test_bad_input():
    X, y = _data()
    stats = SufficientStats.from_data(X, y)
    with pytest.raises(ValueError, match="max_p"):
        enumerate_posterior(stats, GPrior(), max_p=3)
    with pytest.raises(ValueError, match="a must"):
        HyperGPrior(a=2.0)
    with pytest.raises(ValueError, match="constant"):
        SufficientStats.from_data(X, np.ones(len(y)))


def test_statistics_accumulated_in_chunks_give_the_same_view():
    from l0bayes.linear_model.subset_search import GaussianStats

    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(90, 4)) + 3.0, rng.normal(size=90) - 1.0
    chunks = GaussianStats.from_chunks((X[i : i + 25], y[i : i + 25]) for i in range(0, 90, 25))
    whole, parts = SufficientStats.from_data(X, y), SufficientStats.of(chunks)
    assert parts.n == whole.n == 90
    np.testing.assert_allclose(parts.gram, whole.gram, rtol=1e-12)
    np.testing.assert_allclose(parts.xty, whole.xty, rtol=1e-12, atol=1e-12)
    assert parts.yty == pytest.approx(whole.yty, rel=1e-12)


@pytest.mark.parametrize(
    ("n", "k", "resid"), [(30, 28, 2.0**-46), (10, 8, 2.0**-46), (30, 27, 2.0**-40)]
)
def test_hyper_g_near_perfect_fit_is_finite_and_matches_quadrature(n, k, resid):
    """A near-perfect fit with k = n - 2 (the large models a chain meets when p > n) makes the
    integrand flat up to g ~ 1/e, where exp(tau) once overflowed in the search for its ends
    (pytest turns that RuntimeWarning into an error). The value matches the 1-D reference
    (residuals are powers of two, so that the reference's 1 - R^2 is exactly the same number)."""
    total, ref = _integrate_over_g(1 - resid, k, n, 3.0, 1.0)
    got = HyperGPrior().log_bayes_factor(np.array([resid]), np.zeros(1), np.array([k]), n)[0]
    assert np.isfinite(got)
    assert got == pytest.approx(math.log(total) + ref, rel=1e-6)
