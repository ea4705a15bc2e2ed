r"""Convergence of Markov chains: the multi-chain effective sample size and split-:math:`\hat R`
(Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021)."""

from __future__ import annotations

import math

import numpy as np


def effective_sample_size(draws: np.ndarray) -> float:
    r"""Multi-chain ESS of a scalar, ``draws`` shape ``(chains, n)`` (Vehtari et al. 2021):

    .. math::

        \hat\rho_t = 1 - \frac{W - \bar{\gamma}_t}{\widehat{\mathrm{var}}^+}, \qquad
        \mathrm{ESS} = \frac{C n}{-1 + 2 \sum_{t} (\hat\rho_{2t} + \hat\rho_{2t+1})},

    the pair sums truncated at the first negative one and made monotone (Geyer 1992).
    A constant trace has ESS :math:`C n`.
    """
    draws = np.atleast_2d(np.asarray(draws, float))
    chains, n = draws.shape
    centred = draws - draws.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=2 * n, axis=1)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), axis=1)[:, :n] / n
    within = acov[:, 0].mean() * n / (n - 1)
    between = draws.mean(axis=1).var(ddof=1) if chains > 1 else 0.0
    var_plus = within * (n - 1) / n + between
    if var_plus <= 0:
        return float(chains * n)
    rho = 1.0 - (within - acov.mean(axis=0)) / var_plus
    pairs = rho[: 2 * (n // 2)].reshape(-1, 2).sum(axis=1)
    negative = np.flatnonzero(pairs < 0)
    pairs = np.minimum.accumulate(pairs[: negative[0] if negative.size else None])
    tau = max(-1.0 + 2.0 * pairs.sum(), 1.0 / math.log10(max(chains * n, 10)))
    return float(chains * n / tau)


PIP_TOLERANCE = 0.05
r"""The accuracy the chains' PIPs are stated to (:mod:`l0bayes.model_space.diagnostics` warns
when a PIP's Monte Carlo error may exceed it; the PIPs' :math:`\hat R` resolves differences
on this scale, :func:`split_rhat`'s ``resolution``)."""


def split_rhat(draws: np.ndarray, resolution: float = 0.0) -> float:
    r"""Split-:math:`\hat R` of ``draws`` ``(chains, n)``: each chain halved, then
    :math:`\sqrt{(\tfrac{m-1}{m} W + B/m) / W}` over the :math:`2C` half-chains of length
    :math:`m`. 1 for a constant trace, inf when half-chains are constant but differ.

    With ``resolution`` :math:`\varepsilon > 0`, :math:`W` is taken as at least
    :math:`\varepsilon^2`: :math:`\hat R` is scale-free, so a trace that varies by 1e-8 (a PIP
    of 0.9999999 in every state the chains visit) would otherwise call half-chains that
    differ by 1e-9 unconverged; with the floor, half-chain means must differ on the scale
    :math:`\varepsilon` the estimate is stated to (for :math:`W \ge \varepsilon^2`
    nothing changes, and half-chains stuck apart by more than about :math:`\varepsilon`
    still give a large :math:`\hat R`)."""
    draws = np.atleast_2d(np.asarray(draws, float))
    m = draws.shape[1] // 2
    halves = np.concatenate([draws[:, :m], draws[:, m : 2 * m]])
    within = max(halves.var(axis=1, ddof=1).mean(), float(resolution) ** 2)
    between_m = halves.mean(axis=1).var(ddof=1)
    if within <= 0:
        return 1.0 if between_m <= 0 else math.inf
    return float(math.sqrt(((m - 1) / m * within + between_m) / within))


__all__ = ["PIP_TOLERANCE", "effective_sample_size", "split_rhat"]
