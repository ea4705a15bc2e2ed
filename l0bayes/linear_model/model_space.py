r"""Markov chains over models with exact conjugate marginal likelihoods, and diagnostics you
can act on.

The prior-agnostic engine (the scorer protocol, :func:`run_chains`, :func:`enumerate_models`,
:func:`diagnose`) lives in :mod:`l0bayes.model_space`, which serves every gated model; its names
are re-exported here. This module holds the conjugate scorers of Gaussian regression.
The marginals come from :mod:`l0bayes.linear_model.marginal_likelihood`.

**Neighbourhoods.** On entering a state :math:`\gamma` (size :math:`k`) the chain computes, with
:math:`M = R_\gamma + \rho I`, :math:`\hat b = M^{-1} r_\gamma`, :math:`e = 1 - r_\gamma^\top
\hat b`, the log posterior of all :math:`p` single-flip neighbours at once in
:math:`O(k^2 p)`:

.. math::

    \text{add } j:\; d_j = R_{jj} + \rho - c_j^\top M^{-1} c_j,\;
        e' = e - (r_j - c_j^\top \hat b)^2 / d_j,\; \log\det{}' = \log\det M + \log d_j;
    \qquad
    \text{delete } j:\; e' = e + \hat b_j^2 / (M^{-1})_{jj},\;
        \log\det{}' = \log\det M + \log (M^{-1})_{jj},

with :math:`c_j = R_{\gamma j}`. Add and delete proposals then cost a lookup; swaps are
factorised afresh (:math:`O(k^3)`, :math:`k` small) and cached by model. Rejections cost
nothing more. Several models are done at once by padding their supports to the largest with
identity blocks (:meth:`ConjugateScorer.neighbours`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from l0bayes.linear_model.marginal_likelihood import (
    RANK_TOL,
    GroupedScorer,
    Prior,
    SufficientStats,
    finish,
    log_marginals,
    max_model_size,
)
from l0bayes.linear_model.model_size import PriorInclusion, check_prior_inclusion, log_prior_by_size
from l0bayes.model_space.chains import (
    PROGRESS_EVERY,
    SAMPLERS,
    MC3Result,
    conditional_inclusion,
    default_starts,
    run_chains,
    tempered_selection,
    weight_efficiency,
)
from l0bayes.model_space.convergence import effective_sample_size, split_rhat
from l0bayes.model_space.diagnostics import (
    MAX_KHAT,
    MAX_RHAT,
    MIN_ESS,
    MISSED_MASS_NATS,
    PIP_TOLERANCE,
    GuideCheck,
    diagnose,
    pip_error_bound,
)
from l0bayes.model_space.scorer import ModelScorer, enumerate_models, model_key
from l0bayes.validation import check_count


class ConjugateScorer(GroupedScorer):
    """Log posteriors :math:`\\log \\mathrm{BF}(\\gamma : \\emptyset) + \\log p(\\gamma)` of the
    conjugate priors, one gate per column (:class:`GroupedScorer`, whose batched ``score`` it
    keeps), cached by model; neighbourhoods by the updates of the module docstring.

    :param stats: the data's sufficient statistics.
    :param prior: a conjugate prior of :mod:`l0bayes.linear_model.marginal_likelihood`.
    :param log_size: :math:`\\log p(\\gamma)` of a model of each size ``0..p``.
    """

    def __init__(self, stats: SufficientStats, prior: Prior, log_size: np.ndarray) -> None:
        super().__init__(stats, prior, log_size)
        self.R, self.r, self.n, self.p = stats.corr, stats.r, stats.n, stats.p
        self.ridge = prior.ridge(stats.n)
        self.diag = np.diag(self.R) + self.ridge
        self.cache: dict[bytes, float] = {}
        # padded with a column p that correlates with nothing: a padding slot of a batch
        # points there and contributes an identity block (``neighbours``)
        self._R_pad = np.zeros((self.p + 1, self.p + 1))
        self._R_pad[: self.p, : self.p] = self.R
        self._r_pad = np.append(self.r, 0.0)
        self._diag_pad = np.append(self.diag, 1.0)

    def _finish(self, resid, logdet, k, min_pivot) -> np.ndarray:
        resid = np.maximum(np.atleast_1d(np.asarray(resid, float)), 1e-14)
        logdet = np.broadcast_to(np.asarray(logdet, float), resid.shape)
        k = np.broadcast_to(np.asarray(k), resid.shape)
        lbf = finish(self.prior, self.n, resid, logdet, k, min_pivot)
        return lbf + self.log_size[k]

    def log_posterior(self, inside: np.ndarray) -> float:
        """Log posterior of one model, cached."""
        key = model_key(inside)
        if (hit := self.cache.get(key)) is not None:
            return hit
        idx = np.flatnonzero(inside)
        k = len(idx)
        if k == 0:
            value = float(self.log_size[0])
        elif k > max_model_size(self.n):
            value = -math.inf
        else:
            M = self.R[np.ix_(idx, idx)] + self.ridge * np.eye(k)
            try:
                L = np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                value = -math.inf if self.prior.full_rank else self.score(inside[None])[0]
            else:
                w = np.linalg.solve(L, self.r[idx])
                d2 = np.diag(L) ** 2
                value = float(self._finish(1.0 - w @ w, np.log(d2).sum(), k, d2.min())[0])
        self.cache[key] = value
        return value

    def neighbours(self, insides: np.ndarray, log_posts: np.ndarray) -> np.ndarray:
        """All single-flip neighbours of each row of ``insides`` in :math:`O(k^2 p)` (module
        docstring), the rows batched: supports are padded to the largest size with identity
        blocks, which change no residual, determinant or pivot."""
        insides = np.atleast_2d(insides)
        log_posts = np.broadcast_to(np.asarray(log_posts, float), insides.shape[:1])
        m, p = insides.shape
        sizes = insides.sum(axis=1)
        # an inadmissible state (e.g. a start with more than n - 2 columns) is padded to the
        # empty model here and scored afresh below: its block may be singular
        stuck = (sizes > 0) & ~np.isfinite(log_posts)
        sizes = np.where(stuck, 0, sizes)
        K = max(1, int(sizes.max()))
        rows, cols = np.nonzero(insides & ~stuck[:, None])  # row by row, columns ascending
        slots = np.arange(rows.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        idx = np.full((m, K), p)  # padding slots point at the padding column p
        idx[rows, slots] = cols
        M = self._R_pad[idx[:, :, None], idx[:, None, :]]
        M[:, np.arange(K), np.arange(K)] = self._diag_pad[idx]
        C = self._R_pad[idx, :p]  # (m, K, p); zero rows at padding slots
        r = self._r_pad[idx]
        Minv = np.linalg.inv(M)
        b_hat = np.einsum("mij,mj->mi", Minv, r)
        resid = 1.0 - (r * b_hat).sum(axis=1)
        logdet = np.linalg.slogdet(M)[1]
        d = self.diag - np.einsum("mip,mip->mp", C, Minv @ C)
        safe = np.maximum(d, RANK_TOL)
        new_resid = resid[:, None] - (self.r - np.einsum("mip,mi->mp", C, b_hat)) ** 2 / safe
        new_logdet = logdet[:, None] + np.log(safe)
        new_size = np.broadcast_to(np.minimum(sizes + 1, p)[:, None], (m, p)).copy()
        inv_diag = Minv[rows, slots, slots]
        new_resid[rows, cols] = resid[rows] + b_hat[rows, slots] ** 2 / inv_diag
        new_logdet[rows, cols] = logdet[rows] + np.log(inv_diag)
        new_size[rows, cols], d[rows, cols] = sizes[rows] - 1, 1.0
        out = self._finish(new_resid.ravel(), new_logdet.ravel(), new_size.ravel(), d.ravel())
        out = out.reshape(m, p)
        for row in np.flatnonzero(stuck):
            out[row] = self.score(insides[row][None, :] ^ np.eye(p, dtype=bool))
        return out


def mc3(
    stats: SufficientStats,
    prior: Prior,
    model_prior: PriorInclusion = 0.5,
    *,
    starts: np.ndarray | None = None,
    n_chains: int = 4,
    n_iter: int = 20_000,
    burn_in: float = 0.1,
    n_draws: int = 1000,
    seed: int = 0,
    sampler: str = "mh",
    kappa: float = 1.0,
    max_iter: int | None = None,
    enough: Callable[[MC3Result], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> MC3Result:
    r"""Run ``n_chains`` chains over the conjugate posterior (module docstring) and pool their
    Rao–Blackwellised PIPs (:func:`run_chains`).

    :param stats: the data's sufficient statistics.
    :param prior: a :class:`~l0bayes.marginal_likelihood.GPrior`, ``HyperGPrior`` or
        ``StandardizedSlab``.
    :param model_prior: :math:`\pi` or ``("beta", a, b)``.
    :param starts: bool ``(m, p)`` starting models (e.g. the guide's draws) for the first
        ``m`` chains; the rest start from :func:`default_starts`.
    :param n_chains: number of chains (each with its own seed).
    :param sampler: ``"mh"`` (MC3 proper) or ``"tempered"`` (weighted tempered Gibbs, which
        moves every iteration at the cost of one neighbourhood).

    The other parameters are :func:`run_chains`'.
    """
    n_chains = check_count("n_chains", n_chains)
    log_size = log_prior_by_size(check_prior_inclusion(model_prior), stats.p)
    initial = default_starts(stats.p, stats.n, n_chains, seed)
    if starts is not None:
        starts = np.atleast_2d(np.asarray(starts, dtype=bool))[:n_chains]
        if starts.shape[1] != stats.p:
            raise ValueError(f"starts must be bool (m, p={stats.p}), got {starts.shape}")
        initial[: len(starts)] = starts
    return run_chains(
        ConjugateScorer(stats, prior, log_size), initial, n_iter=n_iter, burn_in=burn_in,
        n_draws=n_draws, seed=seed, sampler=sampler, kappa=kappa, max_iter=max_iter,
        enough=enough, progress=progress,
    )  # fmt: skip


def guide_missed_mass(
    stats: SufficientStats,
    prior: Prior,
    model_prior: PriorInclusion,
    guide_models: np.ndarray,
    best_log_posterior: float,
    *,
    nats: float = MISSED_MASS_NATS,
) -> GuideCheck:
    r"""Score the distinct ``guide_models`` (bool ``(S, p)``) exactly and compare the best with
    the chain's best: the guide missed mass when :math:`\max_\gamma \log p(\gamma \mid y)` over
    its models is more than ``nats`` below the chain's."""
    models = np.unique(np.atleast_2d(np.asarray(guide_models, dtype=bool)), axis=0)
    log_size = log_prior_by_size(check_prior_inclusion(model_prior), stats.p)
    scores = log_marginals(stats, prior, models) + log_size[models.sum(axis=1)]
    best_guide = float(scores.max())
    gap = float(best_log_posterior - best_guide)
    return GuideCheck(best_guide, float(best_log_posterior), gap, bool(gap > nats))


__all__ = [
    "MAX_KHAT",
    "PROGRESS_EVERY",
    "SAMPLERS",
    "ConjugateScorer",
    "GroupedScorer",
    "enumerate_models",
    "ModelScorer",
    "conditional_inclusion",
    "model_key",
    "run_chains",
    "weight_efficiency",
    "PIP_TOLERANCE",
    "pip_error_bound",
    "MAX_RHAT",
    "MIN_ESS",
    "MISSED_MASS_NATS",
    "GuideCheck",
    "MC3Result",
    "default_starts",
    "diagnose",
    "effective_sample_size",
    "guide_missed_mass",
    "mc3",
    "split_rhat",
    "tempered_selection",
]
