r"""MC3 over models with exact conjugate marginal likelihoods, and diagnostics you can act on.

Madigan & York (1995): from :math:`\gamma`, with probability 1/2 flip one gate :math:`j`
(uniform over :math:`p`: add or delete), else swap a uniform included feature with a uniform
excluded one (a swap from the empty or full model is rejected, which keeps the proposal
symmetric); accept with :math:`\min(1, p(y \mid \gamma') p(\gamma') / p(y \mid \gamma)
p(\gamma))`. The marginals come from :mod:`l0bayes.marginal_likelihood`.

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
factorised afresh (:math:`O(k^3)`, :math:`k` small) and cached by bitmask. Rejections cost
nothing more.

**Rao–Blackwellised PIPs** (Guan & Stephens 2011): every iteration contributes
:math:`P(\gamma_j = 1 \mid \gamma_{-j}, y) = \mathrm{logistic}(\pm(\log p(\gamma^{(j)} \mid y)
- \log p(\gamma \mid y)))` from the neighbourhood, i.e. exactly, for free.

**Monte Carlo error.** ``pip_se`` is :math:`\mathrm{sd}_j / \sqrt{\mathrm{ESS}_j}` of the
thinned RB traces pooled over chains (ESS by Geyer's initial monotone sequence, multi-chain, as
Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from l0bayes.linear_model.marginal_likelihood import (
    RANK_TOL,
    Prior,
    SufficientStats,
    finish,
    log_marginals,
)
from l0bayes.linear_model.model_size import PriorInclusion, check_prior_inclusion, log_prior_by_size
from l0bayes.validation import check_count

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


# ------------------------------------------------------------------------------- scorer
@dataclass
class _State:
    inside: np.ndarray  # (p,) bool
    idx: np.ndarray  # sorted included indices
    out: np.ndarray  # sorted excluded indices
    mask: int
    log_post: float
    flips: np.ndarray  # (p,) log posterior of each single-flip neighbour
    rb: np.ndarray  # (p,) P(gamma_j = 1 | gamma_-j, y)


class _Scorer:
    """Log posteriors :math:`\\log \\mathrm{BF}(\\gamma : \\emptyset) + \\log p(\\gamma)`."""

    def __init__(self, stats: SufficientStats, prior: Prior, log_size: np.ndarray) -> None:
        self.stats, self.prior, self.log_size = stats, prior, log_size
        self.R, self.r, self.n, self.p = stats.corr, stats.r, stats.n, stats.p
        self.ridge = prior.ridge(stats.n)
        self.diag = np.diag(self.R) + self.ridge
        self.cache: dict[int, float] = {}

    def _finish(self, resid, logdet, k, min_pivot) -> np.ndarray:
        resid = np.atleast_1d(np.asarray(resid, float))
        logdet = np.broadcast_to(np.asarray(logdet, float), resid.shape).copy()
        lbf = finish(self.prior, self.n, np.maximum(resid, 1e-14), logdet, k, min_pivot)
        return lbf + self.log_size[np.asarray(k)]

    def score(self, idx: np.ndarray, mask: int) -> float:
        """Log posterior of one sorted support, cached by bitmask."""
        if (hit := self.cache.get(mask)) is not None:
            return hit
        k = len(idx)
        if k == 0:
            value = float(self.log_size[0])
        else:
            M = self.R[np.ix_(idx, idx)] + self.ridge * np.eye(k)
            try:
                L = np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                value = -math.inf if self.prior.full_rank else self._fallback(idx)
            else:
                w = np.linalg.solve(L, self.r[idx])
                d2 = np.diag(L) ** 2
                value = float(self._finish(1.0 - w @ w, np.log(d2).sum(), k, d2.min())[0])
        self.cache[mask] = value
        return value

    def _fallback(self, idx: np.ndarray) -> float:
        inside = np.zeros((1, self.p), dtype=bool)
        inside[0, idx] = True
        return float(log_marginals(self.stats, self.prior, inside)[0] + self.log_size[len(idx)])

    def state(self, inside: np.ndarray, log_post: float | None = None) -> _State:
        idx, out = np.flatnonzero(inside), np.flatnonzero(~inside)
        mask = sum(1 << int(j) for j in idx)
        if log_post is None:
            log_post = self.score(idx, mask)
        flips = self._neighbours(inside, idx, log_post)
        diff = np.where(inside, log_post - flips, flips - log_post)
        rb = expit(np.nan_to_num(diff, nan=0.0))
        return _State(inside, idx, out, mask, log_post, flips, rb)

    def _neighbours(self, inside: np.ndarray, idx: np.ndarray, log_post: float) -> np.ndarray:
        k = len(idx)
        if k and not math.isfinite(log_post):
            masks = np.repeat(inside[None, :], self.p, axis=0)
            masks[np.arange(self.p), np.arange(self.p)] ^= True
            return log_marginals(self.stats, self.prior, masks) + self.log_size[masks.sum(1)]
        C = self.R[idx]  # (k, p)
        Minv = np.linalg.inv(self.R[np.ix_(idx, idx)] + self.ridge * np.eye(k)) if k else C[:, :0]
        b_hat = Minv @ self.r[idx]
        resid = 1.0 - self.r[idx] @ b_hat
        logdet = -np.linalg.slogdet(Minv)[1] if k else 0.0
        d = self.diag - np.einsum("ip,ip->p", C, Minv @ C)
        u = self.r - C.T @ b_hat
        safe = np.maximum(d, RANK_TOL)
        out = self._finish(resid - u**2 / safe, logdet + np.log(safe), min(k + 1, self.p), d)
        if k:
            inv_diag = np.diag(Minv)
            out[idx] = self._finish(
                resid + b_hat**2 / inv_diag, logdet + np.log(inv_diag), k - 1, 1.0
            )
        return out


# ------------------------------------------------------------------------------- chains
@dataclass
class _Chain:
    rb_sum: np.ndarray  # dwell-weighted sum of RB vectors after burn-in
    rb_trace: np.ndarray  # (draws, p), thinned
    log_post: np.ndarray  # (kept,) per iteration
    size: np.ndarray  # (kept,)
    accepted: int
    best: _State
    visited: set[int]


def _propose(scorer: _Scorer, state: _State, flip: bool, u: float, v: float):
    """A symmetric proposal: ``(inside', mask', log_post')``, or None for a blocked swap."""
    p, k = scorer.p, len(state.idx)
    if flip:
        j = int(u * p)
        inside = state.inside.copy()
        inside[j] = not inside[j]
        return inside, state.mask ^ (1 << j), float(state.flips[j])
    if k in (0, p):
        return None
    i, j = int(state.idx[int(u * k)]), int(state.out[int(v * (p - k))])
    inside = state.inside.copy()
    inside[i], inside[j] = False, True
    mask = state.mask ^ (1 << i) ^ (1 << j)
    return inside, mask, scorer.score(np.flatnonzero(inside), mask)


def _accept(log_u: float, new: float, old: float) -> bool:
    if old == -math.inf:
        return True  # leave an inadmissible start by any move
    return log_u < new - old


#: Iterations between two calls of ``mc3``'s ``progress`` callback.
PROGRESS_EVERY = 1000


def _run_chain(
    scorer: _Scorer,
    start: np.ndarray,
    n_iter: int,
    burn: int,
    thin: int,
    seed,
    progress: Callable[[int], None] | None = None,
) -> _Chain:
    rng = np.random.default_rng(seed)
    flips, us, vs = rng.random(n_iter) < 0.5, rng.random(n_iter), rng.random(n_iter)
    log_us = np.log(rng.random(n_iter))
    state = best = scorer.state(start.copy())
    kept = n_iter - burn
    chain = _Chain(
        np.zeros(scorer.p),
        np.empty((kept // thin, scorer.p)),
        np.empty(kept),
        np.empty(kept),
        0,
        best,
        {state.mask},
    )
    dwell = 0
    for t in range(n_iter):
        proposal = _propose(scorer, state, bool(flips[t]), float(us[t]), float(vs[t]))
        if proposal is not None and _accept(float(log_us[t]), proposal[2], state.log_post):
            chain.rb_sum += dwell * state.rb
            dwell = 0
            state = scorer.state(proposal[0], proposal[2])
            chain.accepted += 1
            chain.visited.add(state.mask)
            best = state if state.log_post > best.log_post else best
        if t >= burn:
            s = t - burn
            dwell += 1
            chain.log_post[s], chain.size[s] = state.log_post, len(state.idx)
            if s % thin == 0 and s // thin < len(chain.rb_trace):
                chain.rb_trace[s // thin] = state.rb
        if progress is not None and (t + 1) % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    chain.rb_sum += dwell * state.rb
    chain.best = best
    return chain


# -------------------------------------------------------------------------- convergence
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


def split_rhat(draws: np.ndarray) -> float:
    r"""Split-:math:`\hat R` of ``draws`` ``(chains, n)``: each chain halved, then
    :math:`\sqrt{(\tfrac{m-1}{m} W + B/m) / W}` over the :math:`2C` half-chains of length
    :math:`m`. 1 for a constant trace, inf when half-chains are constant but differ."""
    draws = np.atleast_2d(np.asarray(draws, float))
    m = draws.shape[1] // 2
    halves = np.concatenate([draws[:, :m], draws[:, m : 2 * m]])
    within = halves.var(axis=1, ddof=1).mean()
    between_m = halves.mean(axis=1).var(ddof=1)
    if within <= 0:
        return 1.0 if between_m <= 0 else math.inf
    return float(math.sqrt(((m - 1) / m * within + between_m) / within))


# ------------------------------------------------------------------------------- result
@dataclass(frozen=True)
class MC3Result:
    r"""PIPs and diagnostics of :func:`mc3`.

    :param inclusion_probs: pooled Rao–Blackwellised PIPs, shape ``(p,)``.
    :param chain_inclusion_probs: per chain, shape ``(chains, p)``.
    :param pip_se: Monte Carlo standard error of each pooled PIP.
    :param pip_spread: :math:`\max_j (\max_c - \min_c)` of the chains' PIPs.
    :param rhat: largest split-:math:`\hat R` of the thinned RB traces over features.
    :param ess_log_posterior: pooled ESS of the log-posterior trace.
    :param ess_model_size: pooled ESS of the model-size trace.
    :param acceptance: acceptance rate of each chain.
    :param best_model: the most probable visited model (bool ``(p,)``).
    :param best_log_posterior: its :math:`\log \mathrm{BF}(\gamma : \emptyset) + \log p(\gamma)`.
    :param n_models: distinct models visited by all chains.
    :param log_posterior_trace: ``(chains, kept)`` after burn-in.
    :param rb_trace: thinned RB vectors, ``(chains, draws, p)``.
    :param elapsed: wall seconds.
    :param model_size_probs: visit frequencies of the model sizes ``0..p`` after burn-in,
        pooled over the chains (an estimate of :math:`P(|\gamma| = k \mid y)`).
    """

    inclusion_probs: np.ndarray
    chain_inclusion_probs: np.ndarray
    pip_se: np.ndarray
    pip_spread: float
    rhat: float
    ess_log_posterior: float
    ess_model_size: float
    acceptance: np.ndarray
    best_model: np.ndarray
    best_log_posterior: float
    n_models: int
    log_posterior_trace: np.ndarray
    rb_trace: np.ndarray
    elapsed: float
    model_size_probs: np.ndarray


def default_starts(p: int, n: int, n_chains: int, seed: int = 0) -> np.ndarray:
    """Starting models ``(n_chains, p)``: the empty model, the full model (``n - 2`` random
    columns if ``p > n - 2``), then independent Bernoulli(1/2) models."""
    rng = np.random.default_rng(seed)
    starts = rng.random((max(n_chains, 2), p)) < 0.5
    starts[0] = False
    starts[1] = False
    starts[1, rng.permutation(p)[: min(p, n - 2)]] = True
    return starts[:n_chains]


def _pip_se(rb_trace: np.ndarray) -> np.ndarray:
    sd = rb_trace.std(axis=(0, 1))
    ess = np.array([effective_sample_size(rb_trace[:, :, j]) for j in range(rb_trace.shape[2])])
    return sd / np.sqrt(ess)


def _summarise(chains: list[_Chain], n_iter: int, start: float) -> MC3Result:
    kept = len(chains[0].log_post)
    chain_pips = np.array([c.rb_sum / kept for c in chains])
    rb_trace = np.stack([c.rb_trace for c in chains])
    varying = rb_trace.std(axis=(0, 1)) > 0
    best = max((c.best for c in chains), key=lambda s: s.log_post)
    log_post = np.stack([c.log_post for c in chains])
    return MC3Result(
        inclusion_probs=chain_pips.mean(axis=0),
        chain_inclusion_probs=chain_pips,
        pip_se=_pip_se(rb_trace),
        pip_spread=float(np.ptp(chain_pips, axis=0).max()),
        rhat=max([split_rhat(rb_trace[:, :, j]) for j in np.flatnonzero(varying)], default=1.0),
        ess_log_posterior=effective_sample_size(log_post),
        ess_model_size=effective_sample_size(np.stack([c.size for c in chains])),
        acceptance=np.array([c.accepted / n_iter for c in chains]),
        best_model=best.inside.copy(),
        best_log_posterior=float(best.log_post),
        n_models=len(set().union(*(c.visited for c in chains))),
        log_posterior_trace=log_post,
        rb_trace=rb_trace,
        elapsed=time.perf_counter() - start,
        model_size_probs=_size_frequencies(chains),
    )


def _size_frequencies(chains: list[_Chain]) -> np.ndarray:
    sizes = np.concatenate([c.size for c in chains]).astype(int)
    p = len(chains[0].rb_sum)
    return np.bincount(sizes, minlength=p + 1) / sizes.size


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
    progress: Callable[[int], None] | None = None,
) -> MC3Result:
    r"""Run ``n_chains`` MC3 chains (module docstring) and pool their Rao–Blackwellised PIPs

    .. math::

        \hat\pi_j = \frac{1}{C T} \sum_{c, t} P(\gamma_j = 1 \mid \gamma^{(c, t)}_{-j}, y).

    :param stats: the data's sufficient statistics.
    :param prior: a :class:`~l0bayes.marginal_likelihood.GPrior`, ``HyperGPrior`` or
        ``StandardizedSlab``.
    :param model_prior: :math:`\pi` or ``("beta", a, b)``.
    :param starts: bool ``(m, p)`` starting models (e.g. the guide's draws) for the first
        ``m`` chains; the rest start from :func:`default_starts`.
    :param n_chains: number of chains (each with its own seed).
    :param n_iter: iterations per chain, burn-in included.
    :param burn_in: fraction of each chain discarded.
    :param n_draws: RB vectors kept per chain for :math:`\hat R` and the standard errors.
    :param seed: seeds the starts and, through ``SeedSequence.spawn``, the chains.
    :param progress: called with the number of iterations done since its last call, every
        :data:`PROGRESS_EVERY` iterations of each chain (e.g. a progress bar's ``update``).
    """
    start_time = time.perf_counter()
    n_chains = check_count("n_chains", n_chains)
    n_iter = check_count("n_iter", n_iter, minimum=10)
    if not 0 <= burn_in < 1:
        raise ValueError(f"burn_in must lie in [0, 1), got {burn_in!r}")
    log_size = log_prior_by_size(check_prior_inclusion(model_prior), stats.p)
    scorer = _Scorer(stats, prior, log_size)
    initial = default_starts(stats.p, stats.n, n_chains, seed)
    if starts is not None:
        starts = np.atleast_2d(np.asarray(starts, dtype=bool))[:n_chains]
        if starts.shape[1] != stats.p:
            raise ValueError(f"starts must be bool (m, p={stats.p}), got {starts.shape}")
        initial[: len(starts)] = starts
    burn = int(burn_in * n_iter)
    thin = max(1, (n_iter - burn) // check_count("n_draws", n_draws))
    seeds = np.random.SeedSequence(seed).spawn(n_chains)
    chains = [
        _run_chain(scorer, s, n_iter, burn, thin, q, progress)
        for s, q in zip(initial, seeds, strict=True)
    ]
    return _summarise(chains, n_iter, start_time)


# --------------------------------------------------------------------------- diagnostics
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
    "MC3Result",
    "default_starts",
    "diagnose",
    "effective_sample_size",
    "guide_missed_mass",
    "mc3",
    "split_rhat",
]
