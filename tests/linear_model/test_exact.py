"""Tests for ``l0bayes.linear_model.exact`` against an independent brute-force reference.

The reference never centres anything. For each model it evaluates the *un-centred* model

    y ~ N_n(b 1, Sigma_gamma),   Sigma_gamma = sigma^2 I + X_gamma S_gamma X_gamma',

with scipy's ``multivariate_normal`` and integrates the intercept ``b`` against the flat prior
of unit density. As a function of ``b`` the log density is an exact quadratic with curvature
``c = 1' Sigma^-1 1``, so the Laplace formula is exact:

    log int N(y; b 1, Sigma) db = log N(y; b_hat 1, Sigma) + 0.5 log(2 pi / c),

where ``b_hat = 1' Sigma^-1 y / c``. This is the true marginal likelihood with a flat intercept
(checked once more by numerical quadrature below), so it tests the module's centring argument,
its Woodbury / determinant-lemma algebra and its absolute constant in one go. Conditional
posterior means come from the joint Gaussian posterior of ``(b, beta_gamma)`` with the raw design
``[1, X_gamma]`` and prior precision ``diag(0, 1 / s^2)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.special import betaln, logsumexp

import l0bayes.linear_model.exact as exact
from l0bayes.linear_model.exact import ExactPosterior, exact_posterior, log_marginal_likelihoods

N_SMALL, P_SMALL, SIGMA = 25, 6, 0.8
TOL = 1e-8


def _data(n: int, p: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlated, shifted features and a sparse truth with a non-zero intercept."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ (np.eye(p) + 0.3 * rng.standard_normal((p, p)))
    X += rng.uniform(-2.0, 2.0, size=p)
    beta = np.zeros(p)
    beta[: min(3, p)] = [1.2, -0.7, 0.4][: min(3, p)]
    return X, 1.5 + X @ beta + SIGMA * rng.standard_normal(n)


def _bits(index: int, p: int) -> np.ndarray:
    return np.array([(index >> j) & 1 for j in range(p)], dtype=bool)


def _ref_model(
    X: np.ndarray, y: np.ndarray, gamma: np.ndarray, slab: np.ndarray
) -> tuple[float, float, np.ndarray]:
    """(log p(y | gamma), E[b | y, gamma], E[beta | y, gamma]) without any centring."""
    n = len(y)
    Xg, sg2 = X[:, gamma], slab[gamma] ** 2
    cov = SIGMA**2 * np.eye(n) + (Xg * sg2) @ Xg.T
    ones = np.ones(n)
    curvature = ones @ np.linalg.solve(cov, ones)
    b_hat = ones @ np.linalg.solve(cov, y) / curvature
    log_ml = stats.multivariate_normal(b_hat * ones, cov).logpdf(y)
    log_ml += 0.5 * math.log(2 * math.pi / curvature)
    design = np.column_stack([ones, Xg])
    precision = design.T @ design / SIGMA**2 + np.diag(np.concatenate([[0.0], 1.0 / sg2]))
    mean = np.linalg.solve(precision, design.T @ y / SIGMA**2)
    beta = np.zeros(X.shape[1])
    beta[gamma] = mean[1:]
    return float(log_ml), float(mean[0]), beta


def _ref_log_prior(gamma: np.ndarray, prior: float | tuple[str, float, float]) -> float:
    p, k = gamma.size, int(gamma.sum())
    if isinstance(prior, tuple):
        return float(betaln(prior[1] + k, prior[2] + p - k) - betaln(prior[1], prior[2]))
    return k * math.log(prior) + (p - k) * math.log(1 - prior)


def _reference(X: np.ndarray, y: np.ndarray, slab: np.ndarray, prior) -> dict[str, np.ndarray]:
    p = X.shape[1]
    models = [_bits(i, p) for i in range(2**p)]
    fits = [_ref_model(X, y, g, slab) for g in models]
    log_ml = np.array([f[0] for f in fits])
    log_joint = log_ml + np.array([_ref_log_prior(g, prior) for g in models])
    log_evidence = logsumexp(log_joint)
    w = np.exp(log_joint - log_evidence)
    gammas = np.array(models, dtype=float)
    return {
        "log_ml": log_ml,
        "log_evidence": log_evidence,
        "log_probs": log_joint - log_evidence,
        "pip": w @ gammas,
        "sizes": np.bincount(gammas.sum(1).astype(int), weights=w, minlength=p + 1),
        "coef": w @ np.array([f[2] for f in fits]),
        "intercept": w @ np.array([f[1] for f in fits]),
    }


PRIORS = [0.3, ("beta", 2.0, 5.0)]
SLABS = [1.5, np.array([0.5, 1.0, 2.0, 0.3, 3.0, 1.2])]


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    return _data(N_SMALL, P_SMALL, seed=0)


@pytest.mark.parametrize("slab", SLABS, ids=["scalar-slab", "per-feature-slab"])
@pytest.mark.parametrize("prior", PRIORS, ids=["fixed-pi", "beta-pi"])
def test_matches_brute_force(small, prior, slab) -> None:
    X, y = small
    ref = _reference(X, y, np.broadcast_to(slab, (P_SMALL,)).astype(float), prior)
    post = exact_posterior(X, y, noise_scale=SIGMA, slab_scale=slab, prior_inclusion=prior)
    np.testing.assert_allclose(post.inclusion_probs, ref["pip"], rtol=0, atol=TOL)
    np.testing.assert_allclose(post.model_size_probs, ref["sizes"], rtol=0, atol=TOL)
    np.testing.assert_allclose(post.coef_mean, ref["coef"], rtol=0, atol=TOL)
    np.testing.assert_allclose(post.log_model_probs, ref["log_probs"], rtol=0, atol=1e-7)
    assert post.intercept == pytest.approx(ref["intercept"], abs=TOL)
    assert post.log_evidence == pytest.approx(ref["log_evidence"], abs=1e-7)


@pytest.mark.parametrize("slab", SLABS, ids=["scalar-slab", "per-feature-slab"])
def test_log_marginal_likelihoods_absolute(small, slab) -> None:
    X, y = small
    ref = _reference(X, y, np.broadcast_to(slab, (P_SMALL,)).astype(float), 0.5)
    np.testing.assert_allclose(
        log_marginal_likelihoods(X, y, SIGMA, slab), ref["log_ml"], atol=1e-7
    )


def test_flat_intercept_constant_by_quadrature(small) -> None:
    """Integrate the intercept numerically for one model: checks the -0.5 log n constant."""
    X, y = small
    gamma = np.array([True, False, True, False, False, True])
    Xg = X[:, gamma]
    cov = SIGMA**2 * np.eye(N_SMALL) + Xg @ Xg.T
    dist = stats.multivariate_normal(np.zeros(N_SMALL), cov)

    def log_density(b: float) -> float:
        return float(dist.logpdf(y - b))

    peak = log_density(float(y.mean()))
    area, _ = integrate.quad(lambda b: math.exp(log_density(b) - peak), -50.0, 50.0, points=[0])
    index = int(np.sum(2 ** np.flatnonzero(gamma)))
    assert log_marginal_likelihoods(X, y, SIGMA, 1.0)[index] == pytest.approx(
        peak + math.log(area), abs=1e-7
    )


def test_chunking_does_not_change_results(small, monkeypatch) -> None:
    """Tiny chunks (one model per chunk for k >= 3) exercise the streaming rescaling."""
    X, y = small
    whole = exact_posterior(X, y, noise_scale=SIGMA, prior_inclusion=("beta", 2.0, 5.0))
    monkeypatch.setattr(exact, "_CHUNK_ELEMENTS", 8)
    chunked = exact_posterior(X, y, noise_scale=SIGMA, prior_inclusion=("beta", 2.0, 5.0))
    np.testing.assert_allclose(chunked.log_model_probs, whole.log_model_probs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunked.coef_mean, whole.coef_mean, rtol=0, atol=1e-12)


def _check_invariants(post: ExactPosterior, p: int, top: int) -> None:
    assert logsumexp(post.log_model_probs) == pytest.approx(0.0, abs=1e-10)
    assert post.log_model_probs.shape == (2**p,)
    assert post.model_size_probs.sum() == pytest.approx(1.0, abs=1e-10)
    assert post.model_size_probs.shape == (p + 1,)
    assert np.all((post.inclusion_probs >= 0) & (post.inclusion_probs <= 1 + 1e-12))
    probs = [prob for _, prob in post.top_models]
    assert len(probs) == min(top, 2**p) and probs == sorted(probs, reverse=True)
    assert probs[0] == pytest.approx(np.exp(post.log_model_probs.max()))
    for support, prob in post.top_models:
        index = int(np.sum(2 ** np.flatnonzero(support)))
        assert support.dtype == bool and prob == pytest.approx(np.exp(post.log_model_probs[index]))


@pytest.mark.parametrize("prior", PRIORS, ids=["fixed-pi", "beta-pi"])
def test_invariants(small, prior) -> None:
    X, y = small
    post = exact_posterior(X, y, noise_scale=SIGMA, prior_inclusion=prior, top=7)
    _check_invariants(post, P_SMALL, top=7)
    assert post.elapsed > 0


def test_fixed_pi_interval_is_point(small) -> None:
    post = exact_posterior(*small, noise_scale=SIGMA, prior_inclusion=0.3)
    assert post.prior_inclusion_mean == 0.3
    assert post.prior_inclusion_interval == (0.3, 0.3)


def test_beta_pi_posterior_mixture(small) -> None:
    """Mean and 5% / 95% quantiles of sum_k P(k | y) Beta(a + k, b + p - k)."""
    a, b = 2.0, 5.0
    post = exact_posterior(*small, noise_scale=SIGMA, prior_inclusion=("beta", a, b))
    k = np.arange(P_SMALL + 1)
    w = post.model_size_probs
    assert post.prior_inclusion_mean == pytest.approx(w @ ((a + k) / (a + b + P_SMALL)), abs=TOL)
    lo, hi = post.prior_inclusion_interval
    for x, q in ((lo, 0.05), (hi, 0.95)):
        assert w @ stats.beta(a + k, b + P_SMALL - k).cdf(x) == pytest.approx(q, abs=1e-9)
    assert lo < post.prior_inclusion_mean < hi


def test_intercept_follows_feature_shift(small) -> None:
    """Shifting x_j by c_j leaves beta's posterior unchanged and moves b by -c' E[beta]."""
    X, y = small
    shift = np.linspace(-3.0, 3.0, P_SMALL)
    base = exact_posterior(X, y, noise_scale=SIGMA)
    moved = exact_posterior(X + shift, y, noise_scale=SIGMA)
    np.testing.assert_allclose(moved.inclusion_probs, base.inclusion_probs, atol=1e-10)
    np.testing.assert_allclose(moved.coef_mean, base.coef_mean, atol=1e-10)
    assert moved.intercept == pytest.approx(base.intercept - shift @ base.coef_mean, abs=1e-9)


X_OK = np.random.default_rng(1).standard_normal((20, 4))


@pytest.mark.parametrize(
    ("X", "y", "kwargs", "match"),
    [
        (np.where(X_OK > 1.5, np.nan, X_OK), X_OK[:, 0], {}, r"X contains \d+ NaN or inf"),
        (X_OK, np.r_[X_OK[1:, 0], np.inf], {}, r"y contains \d+ NaN or inf"),
        (X_OK, X_OK[:-1, 0], {}, "y must be 1-D with one entry per row of X"),
        (X_OK[:, 0], X_OK[:, 0], {}, "X must be a 2-D array"),
        (X_OK[:, :0], X_OK[:, 0], {}, "X has 0 features"),
        (X_OK, X_OK[:, 0], {"noise_scale": 0.0}, "noise_scale must be"),
        (X_OK, X_OK[:, 0], {"noise_scale": -1.0}, "noise_scale must be"),
        (X_OK, X_OK[:, 0], {"slab_scale": 0.0}, "slab_scale must be finite and > 0"),
        (X_OK, X_OK[:, 0], {"slab_scale": [1.0, -1.0, 1.0, 1.0]}, "slab_scale must be finite"),
        (X_OK, X_OK[:, 0], {"slab_scale": [1.0, 1.0]}, r"one entry per feature \(shape \(4,\)\)"),
        (X_OK, X_OK[:, 0], {"prior_inclusion": 0.0}, r"strictly inside \(0, 1\)"),
        (X_OK, X_OK[:, 0], {"prior_inclusion": 1.0}, r"strictly inside \(0, 1\)"),
        (X_OK, X_OK[:, 0], {"prior_inclusion": 1.5}, r"strictly inside \(0, 1\)"),
        (X_OK, X_OK[:, 0], {"prior_inclusion": ("beta", -1.0, 2.0)}, r"\('beta', a, b\)"),
        (X_OK, X_OK[:, 0], {"prior_inclusion": ("beta", 1.0)}, r"\('beta', a, b\)"),
        (X_OK, X_OK[:, 0], {"prior_inclusion": ("gamma", 1.0, 1.0)}, r"\('beta', a, b\)"),
        (X_OK, X_OK[:, 0], {"top": -1}, "top must be a non-negative integer"),
    ],
)
def test_rejects_bad_input(X, y, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        exact_posterior(X, y, **({"noise_scale": 1.0} | kwargs))


def test_too_many_features_message() -> None:
    X = np.random.default_rng(2).standard_normal((30, 12))
    match = r"p=12 means 4\.1e3 models, about .+; pass max_features=12 to force it, .*svi"
    with pytest.raises(ValueError, match=match):
        exact_posterior(X, X[:, 0], noise_scale=1.0, max_features=11)
    with pytest.raises(ValueError, match="p=12 means"):
        log_marginal_likelihoods(X, X[:, 0], 1.0, 1.0, max_features=11)


def _recovery_run(p: int) -> ExactPosterior:
    X, y = _data(1000, p, seed=p)
    post = exact_posterior(X, y, noise_scale=SIGMA, prior_inclusion=("beta", 1.0, 1.0), top=5)
    _check_invariants(post, p, top=5)
    assert np.all(post.inclusion_probs[:3] > 0.99)
    assert np.all(post.inclusion_probs[3:] < 0.5)
    np.testing.assert_allclose(post.coef_mean[:3], [1.2, -0.7, 0.4], atol=0.1)
    return post


def test_speed_smoke_p12() -> None:
    _recovery_run(12)


@pytest.mark.slow
def test_speed_p20() -> None:
    post = _recovery_run(20)
    print(f"p=20, n=1000: {post.elapsed:.2f} s")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(small) -> None:
    cpu = exact_posterior(*small, noise_scale=SIGMA, prior_inclusion=("beta", 2.0, 5.0))
    gpu = exact_posterior(
        *small, noise_scale=SIGMA, prior_inclusion=("beta", 2.0, 5.0), device="cuda"
    )
    np.testing.assert_allclose(gpu.log_model_probs, cpu.log_model_probs, atol=1e-9)
    np.testing.assert_allclose(gpu.coef_mean, cpu.coef_mean, atol=1e-9)


def test_score_supports_matches_full_enumeration():
    """Scoring chosen models gives the same numbers as the corresponding enumeration entries."""
    from l0bayes.linear_model.exact import log_marginal_likelihoods, score_supports

    rng = np.random.default_rng(11)
    X = rng.standard_normal((40, 5))
    y = X[:, 0] - X[:, 2] + rng.standard_normal(40)
    full = log_marginal_likelihoods(X, y, noise_scale=1.0, slab_scale=0.7)
    ids = np.array([0, 1, 5, 31, 18, 5])
    supports = (ids[:, None] >> np.arange(5)) & 1 == 1
    loglik, coef = score_supports(X, y, supports, noise_scale=1.0, slab_scale=0.7)
    np.testing.assert_allclose(loglik, full[ids], rtol=0, atol=1e-10)
    assert np.all(coef[~supports] == 0)
    # the conditional mean of a model is its ridge-type solution (X'X + σ²/s² I)^{-1} X'y
    sel = supports[3]
    Xc, yc = X - X.mean(0), y - y.mean()
    ridge = np.linalg.solve(Xc.T @ Xc + np.eye(5) / 0.49, Xc.T @ yc)
    np.testing.assert_allclose(coef[3][sel], ridge, rtol=1e-9)
