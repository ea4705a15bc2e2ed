r"""Pareto-smoothed importance sampling (PSIS) correction of variational inclusion probabilities.

Mean-field variational posteriors over gates are overconfident when features are correlated:
the guide picks one of two exchangeable features instead of splitting the probability. For the
Gaussian family with the conjugate slab the marginal likelihood :math:`p(y \mid \gamma)` of a
model is available in closed form (:func:`l0bayes.linear_model.exact.score_supports`), so the
fitted guide
can serve as an importance-sampling proposal for the exact posterior (Yao, Vehtari, Simpson &
Gelman 2018, "Yes, but did it work?: Evaluating variational inference"):

.. math::

    \gamma^{(s)} \sim \tilde q(\gamma) = \prod_j \mathrm{Bernoulli}(\rho_j), \quad
    \rho_j = \min(1-\delta, \max(\delta, P_q(z_j \ne 0))), \quad
    \log w_s = \log p(y \mid \gamma^{(s)}) + \log p(\gamma^{(s)}) - \log \tilde q(\gamma^{(s)}),

    \widehat{P}(\gamma_j = 1 \mid y) = \sum_s \bar w_s \gamma^{(s)}_j, \qquad
    \widehat{E}[\beta \mid y] = \sum_s \bar w_s\, E[\beta \mid y, \gamma^{(s)}],

where :math:`p(\gamma)` is the fixed-:math:`\pi` or beta-binomial prior
(:func:`l0bayes.linear_model.model_size.log_prior_by_size`), with Pareto-smoothed, self-normalised
weights
:math:`\bar w_s`. Clipping the proposal at
:math:`\delta` (default :math:`\min(0.1, 1/p)`) keeps every model reachable. The estimate
converges to the exact posterior as the number of draws grows; the Pareto :math:`\hat k`
diagnostic says whether it can be trusted (:math:`\hat k < 0.7`).

A guide that concentrates on a few models draws the same models again and again, so the
largest weights are tied; a generalized Pareto distribution cannot be fitted to such a tail
(arviz then returns no or NaN smoothed weights). The weights are then bounded by construction,
are used unsmoothed, and :math:`\hat k` is reported as NaN ("not estimable"), see
:func:`pareto_smooth`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np

from l0bayes.linear_model.exact import score_supports
from l0bayes.linear_model.model_size import PriorInclusion, check_prior_inclusion, log_prior_by_size
from l0bayes.model_space.local_search import climb
from l0bayes.validation import as_float_array, check_count, checks_Xy

#: A generalized Pareto fit needs at least this many distinct values in the tail.
_MIN_DISTINCT_TAIL = 5


def pareto_smooth(log_weights: np.ndarray) -> tuple[np.ndarray, float]:
    r"""Pareto-smoothed, self-normalised log weights and the tail shape :math:`\hat k`.

    Wraps :func:`arviz.psislw`. Where the tail (the :math:`M = \min(S/5, 3\sqrt S)` largest
    weights) has fewer than five distinct values, or the fit fails, the raw weights are
    normalised instead and :math:`\hat k` is NaN: tied top weights are bounded, not heavy-tailed.
    """
    import arviz as az

    log_w = np.asarray(log_weights, dtype=np.float64)
    if not np.all(np.isfinite(log_w)):
        raise ValueError("log importance weights must be finite")
    log_w = log_w - log_w.max()
    tail_len = int(min(0.2 * log_w.size, 3.0 * np.sqrt(log_w.size)))
    tail = np.sort(log_w)[-tail_len:] if tail_len else log_w[:0]
    if len(np.unique(tail)) >= _MIN_DISTINCT_TAIL:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            smoothed, k_hat = az.psislw(log_w.copy())
        if np.all(np.isfinite(smoothed)) and np.isfinite(k_hat):
            return smoothed, float(k_hat)
    return log_w - np.logaddexp.reduce(log_w), float("nan")


@dataclass(frozen=True)
class ImportanceResult:
    """PSIS estimates of the posterior over models."""

    inclusion_probs: np.ndarray
    coef_mean: np.ndarray
    model_size_probs: np.ndarray
    pareto_k: float
    ess: float
    num_samples: int
    pip_se: np.ndarray | None = None
    best_draw: np.ndarray | None = None
    best_log_joint: float = float("nan")


@checks_Xy()
def psis_inclusion_probs(
    X: np.ndarray,
    y: np.ndarray,
    proposal_probs: np.ndarray,
    *,
    noise_scale: float,
    slab_scale: float | np.ndarray,
    prior_inclusion: PriorInclusion,
    num_samples: int = 4096,
    floor: float | None = None,
    seed: int = 0,
) -> ImportanceResult:
    """PSIS estimate of the posterior inclusion probabilities (see the module docstring)."""
    p = X.shape[1]
    rho = as_float_array(proposal_probs, "proposal_probs")
    if rho.shape != (p,) or not np.all((rho >= 0) & (rho <= 1)):
        raise ValueError(
            f"proposal_probs must hold one probability in [0, 1] per column of X (shape ({p},)),"
            f" got {np.asarray(proposal_probs)!r}"
        )
    delta = min(0.1, 1.0 / p) if floor is None else floor
    if isinstance(delta, bool) or not isinstance(delta, Real) or not 0 < delta < 0.5:
        raise ValueError(f"floor must lie strictly between 0 and 0.5, got {floor!r}")
    num_samples = check_count("num_samples", num_samples)
    rho = np.clip(rho, delta, 1.0 - delta)
    rng = np.random.default_rng(seed)
    draws = rng.random((num_samples, p)) < rho
    models, inverse = np.unique(draws, axis=0, return_inverse=True)
    loglik, cond_mean = score_supports.checked(
        X, y, models, noise_scale=noise_scale, slab_scale=slab_scale
    )
    size = draws.sum(axis=1)
    log_prior = log_prior_by_size(check_prior_inclusion(prior_inclusion), p)[size]
    log_q = np.where(draws, np.log(rho), np.log1p(-rho)).sum(axis=1)
    log_w = loglik[inverse.ravel()] + log_prior - log_q
    smoothed, k_hat = pareto_smooth(log_w)
    w = np.exp(smoothed)
    w /= w.sum()
    pips = w @ draws
    se = np.sqrt((w[:, None] ** 2 * (draws - pips) ** 2).sum(axis=0))
    joint = loglik + log_prior_by_size(check_prior_inclusion(prior_inclusion), p)[models.sum(1)]
    return ImportanceResult(
        inclusion_probs=pips,
        coef_mean=w @ cond_mean[inverse.ravel()],
        model_size_probs=np.bincount(size, weights=w, minlength=p + 1),
        pareto_k=k_hat,
        ess=float(1.0 / np.sum(w**2)),
        num_samples=num_samples,
        pip_se=se,
        best_draw=models[int(np.argmax(joint))],
        best_log_joint=float(joint.max()),
    )


#: The PSIS correction warns (``guide_missed_mass``) when a local search from the best draw
#: finds a model at least twice as probable as every draw of the guide: mass it never saw.
MISSED_MODE_NATS = math.log(2.0)


@checks_Xy()
def hill_climb(
    X: np.ndarray,
    y: np.ndarray,
    start: np.ndarray,
    *,
    noise_scale: float,
    slab_scale: float | np.ndarray,
    prior_inclusion: PriorInclusion,
    max_steps: int = 100,
) -> tuple[np.ndarray, float]:
    r"""Best-improvement ascent of :math:`\log p(y \mid \gamma) + \log p(\gamma)` from
    ``start`` over the models one flip or one swap away (a swap trades a feature for a
    correlated substitute, which no single flip can do without passing a worse model): every
    step scores the :math:`p + k(p - k)` neighbours
    (:func:`~l0bayes.linear_model.exact.score_supports`) and moves to the best while it
    improves (:func:`l0bayes.model_space.climb`). Returns the local optimum and its log joint.
    A model the guide's draws never came near (the check of
    :class:`~l0bayes.linear_model.estimator.L0Regression` after PSIS) shows up as a climb far
    above the best draw."""
    p = X.shape[1]
    log_size = log_prior_by_size(check_prior_inclusion(prior_inclusion), p)

    def joint(models: np.ndarray) -> np.ndarray:
        ll, _ = score_supports.checked(X, y, models, noise_scale=noise_scale, slab_scale=slab_scale)
        return ll + log_size[models.sum(axis=1)]

    return climb(joint, start, max_steps=max_steps)


__all__ = [
    "MISSED_MODE_NATS",
    "ImportanceResult",
    "hill_climb",
    "pareto_smooth",
    "psis_inclusion_probs",
]
