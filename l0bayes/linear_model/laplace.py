r"""Posterior inclusion probabilities of GLMs from Laplace approximations of each model's
marginal likelihood (the approach of BAS for GLMs; Raftery 1996).

**Prior.** For a model :math:`\gamma` (a set of gate groups; a group is one column unless
``groups`` is given) with columns :math:`S_\gamma` of X *standardised* (centred, unit sd):

.. math::

    \beta_j \mid \gamma \sim \mathcal N(0, s^2)\ (j \in S_\gamma), \qquad
    p(b) \propto 1, \qquad p(\log\alpha) \propto 1\ \text{(negative binomial)},

so :math:`s` (``slab_scale``) is the prior sd of the change of the linear predictor (log-odds,
log-rate) per sd of a column, and no answer depends on the units of a column. The flat priors
on the intercept and on :math:`\log\alpha` are shared by every model, so their (improper)
constants cancel in the posterior over models. The model prior is
:math:`\pi^{|\gamma|}(1-\pi)^{G-|\gamma|}` or its beta-binomial
(:func:`~l0bayes.linear_model.model_size.log_prior_by_size`), :math:`|\gamma|` counting groups.

**Laplace approximation.** With :math:`\hat\theta` the posterior mode of the :math:`d`
parameters of :math:`\gamma` (intercept, slopes, and :math:`\log\alpha`; a ridge-penalised
Newton fit, :func:`l0bayes.linear_model.glm.fit_glm`) and :math:`H` the negative Hessian of the
log joint there,

.. math::

    \log p(y \mid \gamma) \approx \log p(y \mid \hat\theta) + \log p(\hat\theta)
        + \tfrac d2 \log 2\pi - \tfrac12 \log\det H .

**Exploring the models.** :func:`laplace_enumerate` scores all :math:`2^G` models
(:data:`ENUMERATION_LIMIT`); :func:`laplace_mc3` runs MC3 chains (flip one group, or swap one
in for one out; Madigan & York 1995) with every model's score cached, and Rao–Blackwellised
PIPs from the single-flip neighbours (Guan & Stephens 2011), summarised in the
:class:`~l0bayes.linear_model.model_space.MC3Result` that
:func:`~l0bayes.linear_model.model_space.diagnose` reads.
"""

from __future__ import annotations

import math

import numpy as np

from l0bayes.linear_model.glm import GLM_FAMILIES, NoMLEError, fit_glm
from l0bayes.linear_model.marginal_likelihood import Enumeration
from l0bayes.linear_model.model_size import PriorInclusion, check_prior_inclusion, log_prior_by_size
from l0bayes.linear_model.model_space import (
    MC3Result,
    default_starts,
    enumerate_models,
    model_key,
    run_chains,
)
from l0bayes.validation import check_choice, check_count, check_offset, check_positive

#: Largest number of gate groups that the estimator's ``correction="auto"`` enumerates.
ENUMERATION_LIMIT = 12
_LOG_2PI = math.log(2.0 * math.pi)


class LaplaceScorer:
    r"""Laplace log marginal likelihoods plus log model priors (module docstring), cached by
    model.

    :param X: (n, p) design (standardised here).
    :param y: (n,) response of ``family``.
    :param family: ``"bernoulli"``, ``"poisson"`` or ``"negative_binomial"``.
    :param slab_scale: :math:`s`, the prior sd of a slope on standardised columns.
    :param model_prior: :math:`\pi` or ``("beta", a, b)``.
    :param offset: (n,) known offset (log exposure) or ``None``.
    :param groups: (p,) group id ``0..G-1`` of each column, or ``None`` (one per column).
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        family: str,
        slab_scale: float = 1.0,
        model_prior: PriorInclusion = 0.5,
        offset: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ) -> None:
        self.family = check_choice("family", family, GLM_FAMILIES)
        X = np.asarray(X, dtype=np.float64)
        self.n, p = X.shape
        scale = X.std(axis=0)
        if not (scale > 0).all():
            raise ValueError("X has constant columns; drop them before scoring models")
        self.Xs = (X - X.mean(axis=0)) / scale
        self.y = np.asarray(y, dtype=np.float64)
        self.offset = check_offset(offset, self.n)
        self.precision = 1.0 / check_positive("slab_scale", slab_scale) ** 2
        self.groups = np.arange(p) if groups is None else np.asarray(groups, dtype=np.intp)
        self.p = int(self.groups.max()) + 1  # number of gates
        self.log_size = log_prior_by_size(check_prior_inclusion(model_prior), self.p)
        self.cache: dict[bytes, float] = {}

    def log_marginal(self, mask: np.ndarray) -> float:
        r"""The Laplace :math:`\log p(y \mid \gamma)` of the group mask ``mask`` (G,), up to
        the constant of the flat priors; :math:`-\infty` if the mode cannot be found."""
        columns = np.flatnonzero(mask[self.groups])
        try:
            fit = fit_glm(self.Xs[:, columns], self.y, self.family, self.offset, self.precision)
        except NoMLEError:
            return -math.inf
        slopes = fit.beta[1:]
        log_prior = float(
            -0.5 * self.precision * slopes @ slopes
            + columns.size * 0.5 * (math.log(self.precision) - _LOG_2PI)
        )
        d = fit.beta.size + (self.family == "negative_binomial")
        return fit.loglik + log_prior + 0.5 * d * _LOG_2PI - 0.5 * fit.logdet

    def log_posterior(self, mask: np.ndarray) -> float:
        r""":math:`\log p(y \mid \gamma) + \log p(\gamma)`, cached."""
        key = model_key(mask)
        if (hit := self.cache.get(key)) is not None:
            return hit
        value = self.log_marginal(mask) + float(self.log_size[int(mask.sum())])
        self.cache[key] = value
        return value

    def score(self, masks: np.ndarray) -> np.ndarray:
        """Scores ``(m,)`` of the rows of a bool matrix ``(m, G)``, each cached."""
        return np.array([self.log_posterior(mask) for mask in np.atleast_2d(masks)])

    def neighbours(self, masks: np.ndarray, log_posts: np.ndarray | None = None) -> np.ndarray:
        """Scores ``(m, G)`` of the single-flip neighbours of each row of ``masks``."""
        flipped = np.atleast_2d(masks)[:, None, :] ^ np.eye(self.p, dtype=bool)
        return np.array([[self.log_posterior(mask) for mask in row] for row in flipped])


def laplace_enumerate(
    scorer: LaplaceScorer, max_models: int = 2**ENUMERATION_LIMIT, top: int = 10
) -> Enumeration:
    r""":math:`p(\gamma \mid y) \propto p(\gamma)\,\hat p(y \mid \gamma)` for every model
    (:func:`~l0bayes.model_space.scorer.enumerate_models` over the Laplace scorer)."""
    G = scorer.p
    if 2**G > check_count("max_models", max_models):
        raise ValueError(f"2^{G} models exceed max_models = {max_models}; use laplace_mc3")
    return enumerate_models(scorer, top)


def laplace_mc3(
    scorer: LaplaceScorer,
    *,
    starts: np.ndarray | None = None,
    n_chains: int = 4,
    n_iter: int = 5000,
    burn_in: float = 0.1,
    n_draws: int = 500,
    seed: int = 0,
) -> MC3Result:
    r"""MC3 chains over models with Laplace scores (module docstring), pooled
    Rao–Blackwellised PIPs :math:`\hat\pi_g = \frac1{CT}\sum_{c,t} P(\gamma_g = 1 \mid
    \gamma^{(c,t)}_{-g}, y)`, and the diagnostics of
    :class:`~l0bayes.linear_model.model_space.MC3Result`.

    :param starts: bool ``(m, G)`` starting models of the first m chains; the others start
        from the empty model, the full model and Bernoulli(1/2) draws.
    """
    n_chains = check_count("n_chains", n_chains)
    initial = default_starts(scorer.p, scorer.n, n_chains, seed)
    if starts is not None:
        starts = np.atleast_2d(np.asarray(starts, dtype=bool))[:n_chains]
        initial[: len(starts)] = starts
    return run_chains(
        scorer, initial, n_iter=n_iter, burn_in=burn_in, n_draws=n_draws, seed=seed, sampler="mh"
    )


__all__ = [
    "ENUMERATION_LIMIT",
    "LaplaceScorer",
    "laplace_enumerate",
    "laplace_mc3",
]
