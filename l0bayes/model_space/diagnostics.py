r"""Diagnostics you can act on: each warning starts with the name of the diagnostic that fired
(``khat``, ``ess``, ``pip_spread``, ``rhat``, ``guide_missed_mass``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from l0bayes.model_space.chains import MC3Result

MAX_KHAT = 0.7
"""PSIS :math:`\\hat k` above which importance weights are not trusted (Vehtari et al. 2024)."""
MIN_ESS = 400.0
"""Smallest acceptable pooled ESS of the log-posterior trace."""
MAX_PIP_SPREAD = 0.02
"""Largest acceptable difference between chains' PIPs for any feature."""
MAX_RHAT = 1.05
"""Largest acceptable split-:math:`\\hat R` of the Rao–Blackwellised PIP traces."""
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


def diagnose(
    result: MC3Result | None = None,
    *,
    khat: float | None = None,
    guide: GuideCheck | None = None,
) -> list[str]:
    """Warnings, each starting with the name of the diagnostic that fired; empty if none.

    Thresholds: :data:`MAX_KHAT`, :data:`MIN_ESS`, :data:`MAX_PIP_SPREAD`, :data:`MAX_RHAT`
    and :data:`MISSED_MASS_NATS` (through ``guide.missed``).
    """
    warnings = []
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
        if not result.pip_spread <= MAX_PIP_SPREAD:
            worst = int(np.ptp(result.chain_inclusion_probs, axis=0).argmax())
            warnings.append(
                f"pip_spread: chains disagree by {result.pip_spread:.3f} > {MAX_PIP_SPREAD} "
                f"(feature {worst}); run longer or start more chains"
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
    "MAX_PIP_SPREAD",
    "MAX_RHAT",
    "MIN_ESS",
    "MISSED_MASS_NATS",
    "GuideCheck",
    "diagnose",
]
