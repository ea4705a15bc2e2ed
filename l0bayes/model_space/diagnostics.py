r"""Diagnostics you can act on: each warning starts with the name of the diagnostic that fired
(``khat``, ``ess``, ``pip_spread``, ``pip_se``, ``rhat``, ``guide_missed_mass``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

from l0bayes.model_space.chains import MC3Result
from l0bayes.model_space.convergence import PIP_TOLERANCE

MAX_KHAT = 0.7
"""PSIS :math:`\\hat k` above which importance weights are not trusted (Vehtari et al. 2024)."""
MIN_ESS = 400.0
"""Smallest acceptable pooled ESS of the log-posterior trace."""
MAX_RHAT = 1.05
"""Largest acceptable split-:math:`\\hat R` of the weight-scaled Rao–Blackwellised PIP traces
(:func:`~l0bayes.model_space.chains.pip_rhat`)."""
MISSED_MASS_NATS = 3.0
"""The guide missed mass if its best model is this many nats below the chain's best."""


@dataclass(frozen=True)
class GuideCheck:
    """Did a set of models (e.g. the guide's draws) come near the chain's best model?

    :param best_guide_log_posterior: the best log posterior among the guide's models.
    :param best_chain_log_posterior: the chain's best.
    :param gap: chain's best minus guide's best, in nats.
    :param missed: ``gap > nats``.
    """

    best_guide_log_posterior: float
    best_chain_log_posterior: float
    gap: float
    missed: bool


def pip_error_bound(result: MC3Result) -> tuple[np.ndarray, np.ndarray]:
    r"""Half-widths of 95% intervals on each pooled PIP's Monte Carlo error, from the two
    estimates of its standard error: within chains, :math:`2\,\mathrm{se}_j` (``pip_se``,
    the autocorrelation-aware standard error of the pooled traces), and between chains,
    :math:`t_{0.975, C-1}\, s_j / \sqrt C` with :math:`s_j` the standard deviation of the
    :math:`C` chains' PIPs (chains that have not mixed disagree more than their traces
    suggest).  Returns (within, between)."""
    chains = result.chain_inclusion_probs
    within = 2.0 * np.asarray(result.pip_se)
    n_chains = chains.shape[0]
    if n_chains < 2:
        return within, np.zeros_like(within)
    quantile = float(student_t.ppf(0.975, n_chains - 1))
    between = quantile * chains.std(axis=0, ddof=1) / math.sqrt(n_chains)
    return within, between


def _pip_warnings(result: MC3Result) -> list[str]:
    """``pip_spread`` and ``pip_se`` warnings when a PIP's error may exceed
    :data:`PIP_TOLERANCE` (:func:`pip_error_bound`)."""
    within, between = pip_error_bound(result)
    out = []
    if not between.max() <= PIP_TOLERANCE:
        j = int(between.argmax())
        out.append(
            f"pip_spread: chains disagree by {result.pip_spread:.3f}, so a PIP's error may "
            f"reach {between[j]:.3f} > {PIP_TOLERANCE} (feature {j}); run longer or start "
            "more chains"
        )
    if not within.max() <= PIP_TOLERANCE:
        j = int(within.argmax())
        out.append(
            f"pip_se: a PIP's Monte Carlo error may reach {within[j]:.3f} > {PIP_TOLERANCE} "
            f"(two standard errors, feature {j}); run longer"
        )
    return out


def diagnose(
    result: MC3Result | None = None,
    *,
    khat: float | None = None,
    guide: GuideCheck | None = None,
) -> list[str]:
    """Warnings, each starting with the name of the diagnostic that fired; empty if none.

    Thresholds: :data:`MAX_KHAT`, :data:`MIN_ESS`, :data:`PIP_TOLERANCE` (on
    :func:`pip_error_bound`), :data:`MAX_RHAT` and :data:`MISSED_MASS_NATS` (through
    ``guide.missed``).
    """
    warnings = []
    if result is not None:
        warnings += _pip_warnings(result)
    if khat is not None and not khat <= MAX_KHAT:
        warnings.append(
            f"khat: PSIS k-hat = {khat:.2f} > {MAX_KHAT}; importance weights unreliable"
        )
    if result is not None:
        if not result.ess_log_posterior >= MIN_ESS:
            warnings.append(
                f"ess: effective sample size of the log posterior "
                f"{result.ess_log_posterior:.0f} < {MIN_ESS:.0f}; run longer"
            )
        if not result.rhat <= MAX_RHAT:
            warnings.append(f"rhat: split-Rhat {result.rhat:.3f} > {MAX_RHAT}; not converged")
    if guide is not None and guide.missed:
        warnings.append(
            f"guide_missed_mass: the guide's best model is {guide.gap:.1f} nats below the "
            f"chain's best (> {MISSED_MASS_NATS}); its PIPs miss posterior mass"
        )
    return warnings


__all__ = [
    "MAX_KHAT",
    "MAX_RHAT",
    "MIN_ESS",
    "MISSED_MASS_NATS",
    "PIP_TOLERANCE",
    "GuideCheck",
    "diagnose",
    "pip_error_bound",
]
