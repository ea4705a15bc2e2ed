"""Shared references of the regression tests: ill-conditioned designs and 50-digit least
squares (fixtures that return functions, as tests import no test module)."""

import mpmath
import numpy as np
import pytest

from l0bayes.data.simulate import simulate_regression


def _ill_conditioned(rng, n, p, collinearity, noise):
    """Columns that are noisy copies of two directions (condition number about
    1/``collinearity``), on scales from 1e-3 to 1e3 with large means, and y fitted up to a
    relative ``noise`` (1 - R^2 about noise^2)."""
    base = rng.normal(size=(n, 2))
    X = base @ rng.normal(size=(2, p)) + collinearity * rng.normal(size=(n, p))
    X = X * 10.0 ** rng.uniform(-3, 3, p) + 10.0 ** rng.uniform(-2, 4, p)
    signal = X @ rng.normal(size=p)
    y = signal + noise * signal.std() * rng.normal(size=n)
    return X, y


def _simulated(n=200, p=8, k=3, rho=0.0, snr=2.0, seed=0, family="gaussian"):
    """X, y and the true coefficients of a simulated regression (Gaussian y shifted by 3, so
    the intercept matters)."""
    prob = simulate_regression(n=n, p=p, k=min(k, p), rho=rho, snr=snr, seed=seed, family=family)
    return prob.X, prob.y + (3.0 if family == "gaussian" else 0.0), prob.beta


def _reference_rss(X, y, cols, digits=50):
    """RSS of the least-squares fit of y on [1, X[:, cols]] in ``digits``-digit arithmetic
    (normal equations: their squared condition number is harmless at this precision)."""
    with mpmath.workdps(digits):
        n = X.shape[0]
        A = mpmath.matrix([[1] + [mpmath.mpf(float(X[i, c])) for c in cols] for i in range(n)])
        Y = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
        beta = mpmath.lu_solve(A.T * A, A.T * Y)
        resid = Y - A * beta
        return float(sum(r**2 for r in resid))


def _reference_max_vif(X, cols, digits=50):
    """The largest variance inflation factor of the columns ``cols`` in ``digits``-digit
    arithmetic (the diagonal of the inverse of their correlation matrix); 1 for none."""
    if not len(cols):
        return 1.0
    with mpmath.workdps(digits):
        n = X.shape[0]
        Z = mpmath.matrix([[mpmath.mpf(float(X[i, c])) for c in cols] for i in range(n)])
        means = [sum(Z[i, j] for i in range(n)) / n for j in range(len(cols))]
        for i in range(n):
            for j in range(len(cols)):
                Z[i, j] -= means[j]
        G = Z.T * Z
        G_inv = mpmath.inverse(G)
        return float(max(G[j, j] * G_inv[j, j] for j in range(len(cols))))


@pytest.fixture
def ill_conditioned():
    return _ill_conditioned


@pytest.fixture
def simulated():
    return _simulated


@pytest.fixture
def reference_rss():
    return _reference_rss


@pytest.fixture
def reference_max_vif():
    return _reference_max_vif


@pytest.fixture
def tied_design():
    """Columns u + e and u - e with y = u + noise (noise orthogonal to 1, u, e): in exact
    arithmetic {0} and {1} have the same RSS, and BIC prefers either one to both or none."""
    n = 40
    t = np.arange(n) - (n - 1) / 2
    u = np.where(np.arange(n) % 4 == 0, 1.0, 0.0) - 0.25
    v = np.where(np.arange(n) % 4 == 2, 1.0, 0.0) - 0.25
    e = 0.05 * (v - u * (v @ u) / (u @ u))
    noise = np.cos(0.7 * t) + 0.3 * np.sin(1.9 * t)
    basis = np.column_stack([np.ones(n), u, e])
    noise -= basis @ np.linalg.lstsq(basis, noise, rcond=None)[0]
    return np.column_stack([u + e, u - e]), u + noise
