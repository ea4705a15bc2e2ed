"""Simulated regression problems for studies, benchmarks and tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np

from l0bayes.validation import check_choice, check_count, check_positive

#: The families simulate_regression draws responses for.
SIMULATED_FAMILIES = ("gaussian", "bernoulli")


@dataclass(frozen=True)
class Problem:
    """A simulated data set with its true coefficients and noise scale."""

    X: np.ndarray
    y: np.ndarray
    beta: np.ndarray
    noise_scale: float

    @property
    def support(self) -> np.ndarray:
        return self.beta != 0


def simulate_regression(
    n: int = 200,
    p: int = 12,
    k: int = 3,
    rho: float = 0.0,
    snr: float = 2.0,
    seed: int = 0,
    family: str = "gaussian",
) -> Problem:
    r"""Rows :math:`x_i \sim \mathcal N(0, \Sigma)` with equicorrelation
    :math:`\Sigma_{jl} = \rho` (:math:`j \ne l`); the first ``k`` coefficients are
    :math:`\pm U(0.5, 1.5)`, the rest 0. Gaussian: noise variance
    :math:`\mathrm{Var}(X\beta)/\mathrm{snr}` (population value, so "snr" is the signal-to-noise
    ratio); Bernoulli: :math:`y \sim \mathrm{Bernoulli}(\sigma(\sqrt{\mathrm{snr}}\,
    x'\beta/\mathrm{sd}(x'\beta)))`."""
    n, p = check_count("n", n), check_count("p", p)
    k = check_count("k", k)  # k >= 1: the noise variance is set from the signal's, by snr
    if k > p:
        raise ValueError(f"k (the number of non-zero coefficients) must be <= p = {p}, got {k}")
    check_positive("snr", snr)
    check_choice("family", family, SIMULATED_FAMILIES)
    low = -1.0 / (p - 1) if p > 1 else -math.inf
    if isinstance(rho, bool) or not isinstance(rho, Real) or not low <= rho <= 1:
        raise ValueError(
            f"rho must lie in [-1/(p-1), 1] = [{low:.3g}, 1] for an equicorrelation matrix to be "
            f"a covariance, got {rho!r}"
        )
    rng = np.random.default_rng(check_count("seed", seed, minimum=0))
    cov = np.full((p, p), rho) + (1.0 - rho) * np.eye(p)
    X = rng.multivariate_normal(np.zeros(p), cov, size=n)
    beta = np.zeros(p)
    beta[:k] = rng.choice([-1.0, 1.0], k) * rng.uniform(0.5, 1.5, k)
    signal_var = float(beta @ cov @ beta)
    if family == "bernoulli":
        eta = np.sqrt(snr) * (X @ beta) / np.sqrt(signal_var)
        return Problem(X, (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float), beta, 1.0)
    sigma = np.sqrt(signal_var / snr)
    return Problem(X, X @ beta + sigma * rng.standard_normal(n), beta, float(sigma))


__all__ = [
    "SIMULATED_FAMILIES",
    "Problem",
    "simulate_regression",
]
