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
import time

import numpy as np
from scipy.special import expit

from l0bayes.linear_model.glm import GLM_FAMILIES, NoMLEError, fit_glm
from l0bayes.linear_model.marginal_likelihood import Enumeration
from l0bayes.linear_model.model_size import PriorInclusion, check_prior_inclusion, log_prior_by_size
from l0bayes.linear_model.model_space import MC3Result, effective_sample_size, split_rhat
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

    def score(self, mask: np.ndarray) -> float:
        r""":math:`\log p(y \mid \gamma) + \log p(\gamma)`, cached."""
        key = np.packbits(mask).tobytes()
        if (hit := self.cache.get(key)) is not None:
            return hit
        value = self.log_marginal(mask) + float(self.log_size[int(mask.sum())])
        self.cache[key] = value
        return value


def laplace_enumerate(
    scorer: LaplaceScorer, max_models: int = 2**ENUMERATION_LIMIT, top: int = 10
) -> Enumeration:
    r""":math:`p(\gamma \mid y) \propto p(\gamma)\,\hat p(y \mid \gamma)` for every model."""
    G = scorer.p
    if 2**G > check_count("max_models", max_models):
        raise ValueError(f"2^{G} models exceed max_models = {max_models}; use laplace_mc3")
    bits = ((np.arange(2**G)[:, None] >> np.arange(G)) & 1).astype(bool)
    return Enumeration.from_log_joint(np.array([scorer.score(mask) for mask in bits]), top)


def _neighbours(scorer: LaplaceScorer, mask: np.ndarray) -> np.ndarray:
    """Scores of the G single-flip neighbours of ``mask``."""
    out = np.empty(scorer.p)
    for g in range(scorer.p):
        mask[g] = not mask[g]
        out[g] = scorer.score(mask)
        mask[g] = not mask[g]
    return out


def _rb(mask: np.ndarray, here: float, flips: np.ndarray) -> np.ndarray:
    r""":math:`P(\gamma_g = 1 \mid \gamma_{-g}, y)` from a state and its flip neighbours."""
    diff = np.where(mask, here - flips, flips - here)
    with np.errstate(invalid="ignore"):
        out = expit(diff)
    return np.where(np.isnan(out), mask.astype(float), out)


def _chain(scorer: LaplaceScorer, start: np.ndarray, n_iter: int, burn: int, thin: int, seed):
    rng = np.random.default_rng(seed)
    G = scorer.p
    mask = start.copy()
    here = scorer.score(mask)
    flips = _neighbours(scorer, mask)
    rb = _rb(mask, here, flips)
    kept = n_iter - burn
    trace = np.empty((kept // thin, G))
    log_post, size = np.empty(kept), np.empty(kept)
    rb_sum, accepted, visited = np.zeros(G), 0, {mask.tobytes()}
    best, best_mask = here, mask.copy()
    for t in range(n_iter):
        if rng.random() < 0.5 or mask.all() or not mask.any():
            g = int(rng.integers(G))
            proposal = mask.copy()
            proposal[g] = not proposal[g]
            new = float(flips[g])
        else:
            proposal = mask.copy()
            proposal[rng.choice(np.flatnonzero(mask))] = False
            proposal[rng.choice(np.flatnonzero(~mask))] = True
            new = scorer.score(proposal)
        if here == -math.inf or math.log(rng.random()) < new - here:
            mask, here = proposal, new
            flips = _neighbours(scorer, mask)
            rb = _rb(mask, here, flips)
            accepted += 1
            visited.add(mask.tobytes())
            if here > best:
                best, best_mask = here, mask.copy()
        if t >= burn:
            s = t - burn
            rb_sum += rb
            log_post[s], size[s] = here, mask.sum()
            if s % thin == 0 and s // thin < len(trace):
                trace[s // thin] = rb
    return rb_sum / kept, trace, log_post, size, accepted, visited, best, best_mask


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
    t0 = time.perf_counter()
    n_chains, n_iter = check_count("n_chains", n_chains), check_count("n_iter", n_iter, 10)
    G = scorer.p
    rng = np.random.default_rng(seed)
    initial = rng.random((n_chains, G)) < 0.5
    initial[0] = False
    if n_chains > 1:
        initial[1] = True
    if starts is not None:
        starts = np.atleast_2d(np.asarray(starts, dtype=bool))[:n_chains]
        initial[: len(starts)] = starts
    burn = int(burn_in * n_iter)
    thin = max(1, (n_iter - burn) // check_count("n_draws", n_draws))
    seeds = np.random.SeedSequence(seed).spawn(n_chains)
    runs = [_chain(scorer, s, n_iter, burn, thin, q) for s, q in zip(initial, seeds, strict=True)]
    chain_pips = np.array([r[0] for r in runs])
    rb_trace = np.stack([r[1] for r in runs])
    log_post = np.stack([r[2] for r in runs])
    sizes = np.stack([r[3] for r in runs])
    varying = rb_trace.std(axis=(0, 1)) > 0
    sd = rb_trace.std(axis=(0, 1))
    ess = np.array([effective_sample_size(rb_trace[:, :, g]) for g in range(G)])
    best = max(range(n_chains), key=lambda c: runs[c][6])
    finite = np.where(np.isfinite(log_post), log_post, np.nanmin(log_post[np.isfinite(log_post)]))
    return MC3Result(
        inclusion_probs=chain_pips.mean(axis=0),
        chain_inclusion_probs=chain_pips,
        pip_se=sd / np.sqrt(ess),
        pip_spread=float(np.ptp(chain_pips, axis=0).max()),
        rhat=max([split_rhat(rb_trace[:, :, g]) for g in np.flatnonzero(varying)], default=1.0),
        ess_log_posterior=effective_sample_size(finite),
        ess_model_size=effective_sample_size(sizes),
        acceptance=np.array([r[4] / n_iter for r in runs]),
        best_model=runs[best][7],
        best_log_posterior=float(runs[best][6]),
        n_models=len(set().union(*(r[5] for r in runs))),
        log_posterior_trace=log_post,
        rb_trace=rb_trace,
        elapsed=time.perf_counter() - t0,
        model_size_probs=np.bincount(sizes.astype(int).ravel(), minlength=G + 1) / sizes.size,
    )


__all__ = [
    "ENUMERATION_LIMIT",
    "LaplaceScorer",
    "laplace_enumerate",
    "laplace_mc3",
]
