r"""Priors on model size: a fixed inclusion probability or a Beta hyperprior, and posteriors.

With :math:`\gamma_j \mid \pi \sim \mathrm{Bernoulli}(\pi)` iid, the prior on a model of size
:math:`k` is :math:`\pi^k(1-\pi)^{p-k}`; with :math:`\pi \sim \mathrm{Beta}(a, b)` integrated
out it is the beta-binomial :math:`B(a+k, b+p-k)/B(a, b)`.
``expected_model_size=M`` with ``concentration=c`` means :math:`a = cM/p`, :math:`b = c(1-M/p)`:
prior mean :math:`E[\pi] = M/p` (so :math:`E[k] = M`) and :math:`a + b = c` "prior
observations"; small :math:`c` spreads the prior over model sizes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import betainc, betaln

PriorInclusion = float | tuple[str, float, float]
_INTERVAL_LEVEL = 0.90


def _is_positive_number(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def beta_from_model_size(expected_model_size: float, concentration: float, p: int):
    """``("beta", a, b)`` with mean ``M / p`` and ``a + b = concentration``."""
    if not (_is_positive_number(expected_model_size) and expected_model_size < p):
        raise ValueError(
            f"expected_model_size must lie strictly between 0 and p = {p}, got "
            f"{expected_model_size!r}"
        )
    if not _is_positive_number(concentration):
        raise ValueError(f"concentration must be a finite number > 0, got {concentration!r}")
    mean = expected_model_size / p
    return ("beta", concentration * mean, concentration * (1.0 - mean))


def check_prior_inclusion(prior_inclusion: PriorInclusion) -> PriorInclusion:
    if isinstance(prior_inclusion, (tuple, list)):
        ok = len(prior_inclusion) == 3 and prior_inclusion[0] == "beta"
        a, b = (prior_inclusion[1], prior_inclusion[2]) if ok else (0.0, 0.0)
        if not (ok and all(_is_positive_number(v) for v in (a, b))):
            raise ValueError(
                "prior_inclusion as a hyperprior must be ('beta', a, b) with finite a > 0 and "
                f"b > 0, e.g. ('beta', 1.0, 1.0); got {prior_inclusion!r}."
            )
        return ("beta", float(a), float(b))
    if not (_is_positive_number(prior_inclusion) and float(prior_inclusion) < 1):
        raise ValueError(
            "prior_inclusion must be a probability strictly inside (0, 1), e.g. 0.5, or "
            f"('beta', a, b); got {prior_inclusion!r}."
        )
    return float(prior_inclusion)


def log_prior_by_size(prior: PriorInclusion, p: int) -> np.ndarray:
    r"""Log prior of one model of each size :math:`k = 0, \dots, p`.

    .. math::

        \log p(\gamma) = k \log \pi + (p - k) \log(1 - \pi)
        \quad\text{or}\quad \log B(a + k, b + p - k) - \log B(a, b).
    """
    k = np.arange(p + 1, dtype=np.float64)
    if isinstance(prior, tuple):
        _, a, b = prior
        return betaln(a + k, b + p - k) - betaln(a, b)
    return k * math.log(prior) + (p - k) * math.log1p(-prior)


def pi_posterior(
    prior: PriorInclusion, size_probs: np.ndarray
) -> tuple[float, tuple[float, float]]:
    r"""Posterior mean and 90% equal-tailed interval of :math:`\pi`.

    .. math::

        p(\pi \mid y) = \sum_k P(k \mid y)\, \mathrm{Beta}(\pi; a + k, b + p - k), \qquad
        E[\pi \mid y] = \sum_k P(k \mid y) \frac{a + k}{a + b + p}.

    The quantiles solve :math:`\sum_k P(k \mid y)\, I_\pi(a + k, b + p - k) = q` by root finding.
    For a fixed :math:`\pi` the posterior is a point mass.
    """
    if not isinstance(prior, tuple):
        return prior, (prior, prior)
    _, a, b = prior
    p = size_probs.size - 1
    k = np.arange(p + 1)
    mean = float(size_probs @ (a + k) / (a + b + p))

    def quantile(q: float) -> float:
        return brentq(lambda x: size_probs @ betainc(a + k, b + p - k, x) - q, 0.0, 1.0)

    tail = (1 - _INTERVAL_LEVEL) / 2
    return mean, (quantile(tail), quantile(1 - tail))


def poisson_binomial(probs: np.ndarray) -> np.ndarray:
    r"""Distribution of :math:`\sum_j \gamma_j` for independent :math:`\gamma_j \sim
    \mathrm{Bernoulli}(p_j)`, by the :math:`O(p^2)` convolution
    :math:`P_{j}(k) = P_{j-1}(k)(1-p_j) + P_{j-1}(k-1)p_j`."""
    pmf = np.zeros(len(probs) + 1)
    pmf[0] = 1.0
    for j, pj in enumerate(np.asarray(probs, dtype=np.float64)):
        pmf[1 : j + 2] = pmf[1 : j + 2] * (1 - pj) + pmf[: j + 1] * pj
        pmf[0] *= 1 - pj
    return pmf


def pmf_interval(pmf: np.ndarray, level: float = _INTERVAL_LEVEL) -> tuple[int, int]:
    """Equal-tailed interval of a distribution on 0..K: the smallest k with CDF ≥ (1-level)/2
    and the smallest k with CDF ≥ (1+level)/2."""
    cdf = np.cumsum(pmf) / np.sum(pmf)
    tail = (1 - level) / 2
    lo = int(np.searchsorted(cdf, tail - 1e-12))
    hi = int(np.searchsorted(cdf, 1 - tail - 1e-12))
    return lo, min(hi, len(pmf) - 1)


__all__ = [
    "PriorInclusion",
    "beta_from_model_size",
    "check_prior_inclusion",
    "log_prior_by_size",
    "pi_posterior",
    "pmf_interval",
    "poisson_binomial",
]
