r"""Markov chains over models with exact conjugate marginal likelihoods, and diagnostics you
can act on.

Two samplers (:data:`SAMPLERS`), both over any :class:`ModelScorer` (the conjugate
:class:`ConjugateScorer` here, the Laplace scorer of :mod:`l0bayes.linear_model.laplace`):

* ``"mh"``, MC3 (Madigan & York 1995): from :math:`\gamma`, with probability 1/2 flip one gate
  :math:`j` (uniform over :math:`p`: add or delete), else swap a uniform included feature with a
  uniform excluded one (a swap from the empty or full model is rejected, which keeps the
  proposal symmetric); accept with :math:`\min(1, p(y \mid \gamma') p(\gamma') / p(y \mid
  \gamma) p(\gamma))`.
* ``"tempered"``, weighted tempered Gibbs (Zanella & Roberts 2019, :func:`tempered_selection`):
  every iteration flips one gate, chosen from the neighbourhood's conditionals; the chain
  targets :math:`p(\gamma \mid y) Z(\gamma)` and importance weights :math:`1/Z(\gamma)` restore
  the posterior. The chains advance in lockstep, one batched neighbourhood per iteration.

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

**Rao–Blackwellised PIPs** (Guan & Stephens 2011): every iteration contributes
:math:`P(\gamma_j = 1 \mid \gamma_{-j}, y) = \mathrm{logistic}(\pm(\log p(\gamma^{(j)} \mid y)
- \log p(\gamma \mid y)))` from the neighbourhood, i.e. exactly, for free.

**Monte Carlo error.** ``pip_se`` is :math:`\mathrm{sd}_j / \sqrt{\mathrm{ESS}_j}` of the
thinned, weight-scaled RB traces pooled over chains (ESS by Geyer's initial monotone sequence,
multi-chain, as Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021); the ESS of the
log-posterior and model-size traces is multiplied by Kish's efficiency of the weights
(:func:`weight_efficiency`; 1 for ``"mh"``).

**Continuation.** :func:`run_chains` with ``enough`` continues the chains (it does not restart
them) to twice their length while ``enough`` says no: the result equals one longer run with
the same burn-in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.special import expit
from scipy.stats import t as student_t

from l0bayes.linear_model.marginal_likelihood import (
    RANK_TOL,
    Enumeration,
    Prior,
    SufficientStats,
    finish,
    log_marginals,
    max_model_size,
)
from l0bayes.linear_model.model_size import PriorInclusion, check_prior_inclusion, log_prior_by_size
from l0bayes.validation import check_choice, check_count, check_positive

MAX_KHAT = 0.7
"""PSIS :math:`\\hat k` above which importance weights are not trusted (Vehtari et al. 2024)."""
MIN_ESS = 400.0
"""Smallest acceptable pooled ESS of the log-posterior trace."""
PIP_TOLERANCE = 0.05
"""The accuracy the chains' PIPs are stated to: :func:`diagnose` warns when a PIP's Monte Carlo
error may exceed it (:func:`pip_error_bound`)."""
MAX_RHAT = 1.05
"""Largest acceptable split-:math:`\\hat R` of the Rao–Blackwellised PIP traces."""
MISSED_MASS_NATS = 3.0
"""The guide missed mass if its best model is this many nats below the chain's best."""


# ------------------------------------------------------------------------------- scorers
class ModelScorer(Protocol):
    """What the chains need of a posterior over models :math:`\\gamma \\in \\{0, 1\\}^p`."""

    p: int

    def log_posterior(self, inside: np.ndarray) -> float:
        """:math:`\\log p(y \\mid \\gamma) + \\log p(\\gamma)` + const (bool ``(p,)``)."""
        ...

    def neighbours(self, insides: np.ndarray, log_posts: np.ndarray) -> np.ndarray:
        """The log posteriors ``(m, p)`` of the single-flip neighbours of each row of
        ``insides`` (bool ``(m, p)``), whose own log posteriors are ``log_posts``."""
        ...


def model_key(inside: np.ndarray) -> bytes:
    """A hashable key of a bool model vector."""
    return np.packbits(inside).tobytes()


class ConjugateScorer:
    """Log posteriors :math:`\\log \\mathrm{BF}(\\gamma : \\emptyset) + \\log p(\\gamma)` of the
    conjugate priors, cached by model; neighbourhoods by the updates of the module docstring.

    :param stats: the data's sufficient statistics.
    :param prior: a conjugate prior of :mod:`l0bayes.linear_model.marginal_likelihood`.
    :param log_size: :math:`\\log p(\\gamma)` of a model of each size ``0..p``.
    """

    def __init__(self, stats: SufficientStats, prior: Prior, log_size: np.ndarray) -> None:
        self.stats, self.prior, self.log_size = stats, prior, log_size
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

    def score(self, models: np.ndarray) -> np.ndarray:
        """Log posteriors of the rows of a bool matrix ``(m, p)``, factorised afresh."""
        return log_marginals(self.stats, self.prior, models) + self.log_size[models.sum(1)]

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


class GroupedScorer:
    """The conjugate posterior over *groups* of columns: gate :math:`g` opens or closes every
    column :math:`j` with ``groups[j] == g`` together, and the model prior counts groups.

    :param stats: the data's sufficient statistics (one row and column per column of X).
    :param prior: a conjugate prior of :mod:`l0bayes.linear_model.marginal_likelihood`.
    :param log_size: :math:`\\log p(\\gamma)` of a model of each number of groups ``0..G``.
    :param groups: ``(p,)`` group id ``0..G-1`` of each column.
    """

    def __init__(
        self, stats: SufficientStats, prior: Prior, log_size: np.ndarray, groups: np.ndarray
    ) -> None:
        self.stats, self.prior, self.log_size = stats, prior, log_size
        self.groups = np.asarray(groups, dtype=np.intp)
        self.p = int(self.groups.max()) + 1
        self.cache: dict[bytes, float] = {}

    def score(self, models: np.ndarray) -> np.ndarray:
        """Log posteriors of the rows of a bool group matrix ``(m, G)``."""
        models = np.atleast_2d(models)
        columns = models[:, self.groups]
        return log_marginals(self.stats, self.prior, columns) + self.log_size[models.sum(1)]

    def log_posterior(self, inside: np.ndarray) -> float:
        """Log posterior of one group model, cached."""
        key = model_key(inside)
        if (hit := self.cache.get(key)) is None:
            hit = self.cache[key] = float(self.score(inside[None])[0])
        return hit

    def neighbours(self, insides: np.ndarray, log_posts: np.ndarray) -> np.ndarray:
        """The ``G`` single-flip neighbours of each row, factorised afresh."""
        insides = np.atleast_2d(insides)
        flipped = insides[:, None, :] ^ np.eye(self.p, dtype=bool)
        return self.score(flipped.reshape(-1, self.p)).reshape(len(insides), self.p)


def enumerate_models(scorer: GroupedScorer | ConjugateScorer, top: int = 10) -> Enumeration:
    """The exact posterior over all :math:`2^p` models of a scorer (``scorer.p <= 20``)."""
    if scorer.p > 20:
        raise ValueError(f"enumerating 2^{scorer.p} models: more than 2^20")
    bits = ((np.arange(2**scorer.p)[:, None] >> np.arange(scorer.p)) & 1).astype(bool)
    return Enumeration.from_log_joint(scorer.score(bits), top)


# -------------------------------------------------------------------------------- states
@dataclass
class _State:
    inside: np.ndarray  # (p,) bool
    log_post: float
    flips: np.ndarray  # (p,) log posterior of each single-flip neighbour
    rb: np.ndarray  # (p,) P(gamma_j = 1 | gamma_-j, y)


def conditional_inclusion(inside: np.ndarray, log_post, flips: np.ndarray) -> np.ndarray:
    r""":math:`P(\gamma_j = 1 \mid \gamma_{-j}, y) = \mathrm{logistic}(\pm(\log p(\gamma^{(j)}
    \mid y) - \log p(\gamma \mid y)))` for every :math:`j` (rows of models broadcast); where
    both are :math:`-\infty` the current value."""
    with np.errstate(invalid="ignore"):
        out = expit(np.where(inside, log_post - flips, flips - log_post))
    return np.where(np.isnan(out), inside.astype(float), out)


def _state(scorer: ModelScorer, inside: np.ndarray, log_post: float | None = None) -> _State:
    if log_post is None:
        log_post = scorer.log_posterior(inside)
    flips = scorer.neighbours(inside[None, :], np.array([log_post]))[0]
    return _State(inside, log_post, flips, conditional_inclusion(inside, log_post, flips))


class _Chain:
    """One chain's running sums and kept traces (after burn-in)."""

    def __init__(self, p: int, burn: int, thin: int) -> None:
        self.burn, self.thin, self.t = burn, thin, 0  # t: iterations run
        self.rb_sum, self.weight_sum, self.moves = np.zeros(p), 0.0, 0
        self.log_post: list[float] = []
        self.size: list[int] = []
        self.weight: list[float] = []
        self.rb_trace: list[np.ndarray] = []
        self.weight_trace: list[float] = []
        self.best_inside, self.best_log_post = np.zeros(p, dtype=bool), -math.inf
        self.visited: set[bytes] = set()

    def visit(self, inside: np.ndarray, log_post: float) -> None:
        self.visited.add(model_key(inside))
        if log_post > self.best_log_post:
            self.best_inside, self.best_log_post = inside.copy(), float(log_post)

    def record(self, rb: np.ndarray, log_post: float, size: int, weight: float) -> bool:
        """Record iteration ``self.t`` (then advance it); False during burn-in."""
        s, self.t = self.t - self.burn, self.t + 1
        if s < 0:
            return False
        self.log_post.append(log_post)
        self.size.append(size)
        self.weight.append(weight)
        if s % self.thin == 0:
            self.rb_trace.append(rb)
            self.weight_trace.append(weight)
        return True


#: Iterations between two calls of the ``progress`` callback.
PROGRESS_EVERY = 1000
SAMPLERS = ("tempered", "mh")
"""``"tempered"``: weighted tempered Gibbs; ``"mh"``: add/delete/swap Metropolis–Hastings."""


# ------------------------------------------------------------------------------ MC3 (MH)
def _mh_step(scorer: ModelScorer, state: _State, flip: bool, u: float, v: float, log_u: float):
    """One add/delete/swap proposal (module docstring): the new state, or None to stay."""
    p, inside = scorer.p, state.inside
    if flip:
        j = int(u * p)
        new = inside.copy()
        new[j] = not new[j]
        log_post = float(state.flips[j])
    else:
        idx, out = np.flatnonzero(inside), np.flatnonzero(~inside)
        if len(idx) in (0, p):
            return None  # a blocked swap keeps the proposal symmetric
        new = inside.copy()
        new[idx[int(u * len(idx))]] = False
        new[out[int(v * len(out))]] = True
        log_post = scorer.log_posterior(new)
    if state.log_post != -math.inf and not log_u < log_post - state.log_post:
        return None  # an inadmissible start is left by any move
    return _state(scorer, new, log_post)


class _MetropolisChains:
    """MC3 chains, one after the other; a state's RB vector is summed once per dwell."""

    def __init__(self, scorer: ModelScorer, starts: np.ndarray, burn: int, thin: int, seeds):
        self.scorer = scorer
        self.rngs = [np.random.default_rng(q) for q in seeds]
        self.states = [_state(scorer, s.copy()) for s in starts]
        self.chains = [_Chain(scorer.p, burn, thin) for _ in starts]
        for chain, state in zip(self.chains, self.states, strict=True):
            chain.visit(state.inside, state.log_post)

    def advance(self, n: int, progress: Callable[[int], None] | None) -> None:
        for c, (chain, rng) in enumerate(zip(self.chains, self.rngs, strict=True)):
            flips, us, vs = rng.random(n) < 0.5, rng.random(n), rng.random(n)
            log_us = np.log(rng.random(n))
            state, dwell = self.states[c], 0
            for t in range(n):
                new = _mh_step(self.scorer, state, bool(flips[t]), us[t], vs[t], log_us[t])
                if new is not None:
                    chain.rb_sum += dwell * state.rb
                    chain.weight_sum += dwell
                    dwell, state = 0, new
                    chain.moves += 1
                    chain.visit(state.inside, state.log_post)
                dwell += chain.record(state.rb, state.log_post, int(state.inside.sum()), 1.0)
                if progress is not None and (t + 1) % PROGRESS_EVERY == 0:
                    progress(PROGRESS_EVERY)
            chain.rb_sum += dwell * state.rb
            chain.weight_sum += dwell
            self.states[c] = state


# ------------------------------------------------------------------ weighted tempered Gibbs
def tempered_selection(
    inside: np.ndarray, log_post: np.ndarray, flips: np.ndarray, rb: np.ndarray, kappa: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""Weighted tempered Gibbs (Zanella & Roberts 2019) for rows of models ``inside``
    ``(m, p)``: the log probabilities ``(m, p)`` of flipping each :math:`j` and the log
    importance weights ``(m,)``,

    .. math::

        \xi_j(\gamma) = \frac{\eta_j(\gamma_{-j})}{P(\gamma_j \mid \gamma_{-j}, y)}, \quad
        \eta_j = P(\gamma_j = 1 \mid \gamma_{-j}, y) + \frac{\kappa}{p}, \quad
        P(\text{flip } j) = \frac{\xi_j}{Z}, \quad Z(\gamma) = \sum_j \xi_j, \quad
        w(\gamma) = \frac1{Z(\gamma)} .

    Since :math:`p(\gamma \mid y)\,\xi_j(\gamma) = p(\gamma_{-j} \mid y)\,\eta_j(\gamma_{-j})`
    is the same for :math:`\gamma` and its flip, the chain is reversible for
    :math:`p(\gamma \mid y) Z(\gamma)` and takes every move; weighting by :math:`w` recovers
    the posterior. :math:`\eta_j = 0` where the flip is inadmissible; an inadmissible state
    (an infeasible start) moves to its best neighbour and weighs 0.
    """
    log_post = np.asarray(log_post, float)[:, None]
    eta = np.where(np.isfinite(flips), rb + kappa / inside.shape[1], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_xi = np.log(eta) + np.logaddexp(0.0, flips - log_post)
    stuck = ~np.isfinite(log_post[:, 0])
    if stuck.any():
        log_xi[stuck] = np.where(flips[stuck] == flips[stuck].max(1, keepdims=True), 0.0, -np.inf)
    top = log_xi.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(log_xi - top).sum(axis=1))
    return log_xi - log_z[:, None], np.where(stuck, -np.inf, -log_z)


class _TemperedChains:
    """Weighted tempered Gibbs chains in lockstep: one batched neighbourhood per iteration
    serves every chain."""

    def __init__(self, scorer, starts: np.ndarray, burn: int, thin: int, seeds, kappa: float):
        self.scorer, self.kappa = scorer, kappa
        self.rngs = [np.random.default_rng(q) for q in seeds]
        self.inside = starts.copy()
        self.log_post = np.array([scorer.log_posterior(row) for row in self.inside])
        self.flips = scorer.neighbours(self.inside, self.log_post)
        self.chains = [_Chain(scorer.p, burn, thin) for _ in starts]

    def advance(self, n: int, progress: Callable[[int], None] | None) -> None:
        m, p = self.inside.shape
        u, rows = np.stack([rng.random(n) for rng in self.rngs]), np.arange(m)
        for t in range(n):
            inside, log_post = self.inside, self.log_post
            rb = conditional_inclusion(inside, log_post[:, None], self.flips)
            log_select, log_weight = tempered_selection(
                inside, log_post, self.flips, rb, self.kappa
            )
            weight = np.exp(log_weight)
            for c, chain in enumerate(self.chains):
                chain.visit(inside[c], log_post[c])
                if chain.record(rb[c], float(log_post[c]), int(inside[c].sum()), weight[c]):
                    chain.rb_sum += weight[c] * rb[c]
                    chain.weight_sum += weight[c]
                chain.moves += 1
            cumulative = np.cumsum(np.exp(log_select), axis=1)
            j = np.minimum((cumulative < u[:, t : t + 1] * cumulative[:, -1:]).sum(axis=1), p - 1)
            self.log_post = self.flips[rows, j]
            inside[rows, j] ^= True
            self.flips = self.scorer.neighbours(inside, self.log_post)
            if progress is not None and (t + 1) % PROGRESS_EVERY == 0:
                progress(m * PROGRESS_EVERY)


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
        pooled over the chains (an estimate of :math:`P(|\gamma| = k \mid y)`), weighted
        by the importance weights of a tempered sampler.
    :param n_iter: iterations each chain ran, burn-in included.
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
    n_iter: int = 0


def default_starts(p: int, n: int, n_chains: int, seed: int = 0) -> np.ndarray:
    r"""Starting models ``(n_chains, p)``: the empty model, the full model (``n - 2`` random
    columns if ``p > n - 2``), then random models of the model space: each column in with
    probability :math:`\min(1/2, (n - 2) / (2p))`, at most ``n - 2`` of them
    (:func:`~l0bayes.linear_model.marginal_likelihood.max_model_size`)."""
    rng = np.random.default_rng(seed)
    largest = min(p, max_model_size(n))
    starts = rng.random((max(n_chains, 2), p)) < min(0.5, largest / (2 * p))
    for row in starts[2:]:
        inside = np.flatnonzero(row)
        row[rng.permutation(inside)[largest:]] = False
    starts[0] = False
    starts[1] = False
    starts[1, rng.permutation(p)[:largest]] = True
    return starts[:n_chains]


def weight_efficiency(weights: np.ndarray) -> float:
    r"""Kish's fraction :math:`(\sum w)^2 / (N \sum w^2) \in (0, 1]` of importance weights; 1
    when they are equal (and for an empty or all-zero set)."""
    weights = np.ravel(weights)
    total, square = weights.sum(), (weights**2).sum()
    return float(total**2 / (weights.size * square)) if square > 0 else 1.0


def _pip_se(rb_trace: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""Standard errors of the self-normalised PIP estimates from the thinned traces
    ``(chains, draws, p)`` and weights ``(chains, draws)``: :math:`\mathrm{sd}(z_j) /
    \sqrt{\mathrm{ESS}(z_j)}` with :math:`z_{j} = (w / \bar w)(h_j - \hat\pi_j)` (the delta
    method for a ratio estimator; :math:`z_j = h_j - \hat\pi_j` for equal weights)."""
    scaled = weights / weights.mean() if weights.mean() > 0 else np.ones_like(weights)
    mean = (scaled[..., None] * rb_trace).sum(axis=(0, 1)) / scaled.sum()
    z = scaled[..., None] * (rb_trace - mean)
    ess = np.array([effective_sample_size(z[:, :, j]) for j in range(z.shape[2])])
    return z.std(axis=(0, 1)) / np.sqrt(ess)


def _summarise(chains: list[_Chain], n_draws: int, start: float) -> MC3Result:
    step = max(1, -(-len(chains[0].rb_trace) // n_draws))
    rb_trace = np.stack([np.array(c.rb_trace[::step]) for c in chains])
    weight_trace = np.stack([np.array(c.weight_trace[::step]) for c in chains])
    chain_pips = np.array([c.rb_sum / c.weight_sum for c in chains])
    varying = rb_trace.std(axis=(0, 1)) > 0
    best = max(chains, key=lambda c: c.best_log_post)
    log_post = np.array([c.log_post for c in chains])
    efficiency = weight_efficiency(np.array([c.weight for c in chains]))
    return MC3Result(
        inclusion_probs=chain_pips.mean(axis=0),
        chain_inclusion_probs=chain_pips,
        pip_se=_pip_se(rb_trace, weight_trace),
        pip_spread=float(np.ptp(chain_pips, axis=0).max()),
        rhat=max([split_rhat(rb_trace[:, :, j]) for j in np.flatnonzero(varying)], default=1.0),
        ess_log_posterior=efficiency * effective_sample_size(_finite(log_post)),
        ess_model_size=efficiency * effective_sample_size(np.array([c.size for c in chains])),
        acceptance=np.array([c.moves / c.t for c in chains]),
        best_model=best.best_inside.copy(),
        best_log_posterior=float(best.best_log_post),
        n_models=len(set().union(*(c.visited for c in chains))),
        log_posterior_trace=log_post,
        rb_trace=rb_trace,
        elapsed=time.perf_counter() - start,
        model_size_probs=_size_frequencies(chains),
        n_iter=chains[0].t,
    )


def _finite(log_post: np.ndarray) -> np.ndarray:
    """The trace with the ``-inf`` of an inadmissible start replaced by its finite minimum."""
    finite = np.isfinite(log_post)
    return np.where(finite, log_post, log_post[finite].min() if finite.any() else 0.0)


def _size_frequencies(chains: list[_Chain]) -> np.ndarray:
    """Weighted visit frequencies of the sizes ``0..p``, averaged over chains."""
    p = len(chains[0].rb_sum)
    per_chain = [
        np.bincount(c.size, weights=c.weight, minlength=p + 1) / c.weight_sum for c in chains
    ]
    return np.mean(per_chain, axis=0)


def run_chains(
    scorer: ModelScorer,
    starts: np.ndarray,
    *,
    n_iter: int,
    burn_in: float = 0.1,
    n_draws: int = 1000,
    seed: int = 0,
    sampler: str = "tempered",
    kappa: float = 1.0,
    max_iter: int | None = None,
    enough: Callable[[MC3Result], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> MC3Result:
    r"""One chain per row of ``starts`` (bool ``(chains, p)``) over ``scorer``'s posterior,
    pooled as :math:`\hat\pi_j = \frac1C \sum_c \sum_t w_{ct} h_{ctj} / \sum_t w_{ct}` with
    :math:`h_{ctj} = P(\gamma_j = 1 \mid \gamma^{(c,t)}_{-j}, y)` (Rao–Blackwellised) and
    :math:`w` the importance weights of the ``sampler`` (all 1 for ``"mh"``).

    :param n_iter: iterations per chain, burn-in included.
    :param burn_in: fraction of the first ``n_iter`` iterations discarded.
    :param n_draws: RB vectors kept per chain for :math:`\hat R` and the standard errors.
    :param seed: seeds the chains through ``SeedSequence.spawn``.
    :param sampler: one of :data:`SAMPLERS`.
    :param kappa: :math:`\kappa` of the tempered sampler: each feature is flipped at least at
        a rate of about :math:`\kappa / p` per iteration.
    :param max_iter: with ``enough``, the longest the chains may grow (default ``n_iter``).
    :param enough: called on the result; while it returns False and the chains are at most
        half of ``max_iter`` long, the chains *continue* (not restart) to twice their length.
    :param progress: called with the number of iterations done since its last call, every
        :data:`PROGRESS_EVERY` iterations of each chain (e.g. a progress bar's ``update``).
    """
    start_time = time.perf_counter()
    n_iter = check_count("n_iter", n_iter, minimum=10)
    max_iter = n_iter if max_iter is None else check_count("max_iter", max_iter)
    sampler = check_choice("sampler", sampler, SAMPLERS)
    kappa = check_positive("kappa", kappa)
    if not 0 <= burn_in < 1:
        raise ValueError(f"burn_in must lie in [0, 1), got {burn_in!r}")
    starts = np.atleast_2d(np.asarray(starts, dtype=bool))
    if starts.shape[1] != scorer.p:
        raise ValueError(f"starts must be bool (chains, p={scorer.p}), got {starts.shape}")
    burn = int(burn_in * n_iter)
    thin = max(1, (n_iter - burn) // check_count("n_draws", n_draws))
    seeds = np.random.SeedSequence(seed).spawn(len(starts))
    if sampler == "tempered":
        runner = _TemperedChains(scorer, starts, burn, thin, seeds, kappa)
    else:
        runner = _MetropolisChains(scorer, starts, burn, thin, seeds)
    runner.advance(n_iter, progress)
    result = _summarise(runner.chains, n_draws, start_time)
    while enough is not None and 2 * result.n_iter <= max_iter and not enough(result):
        runner.advance(result.n_iter, progress)
        result = _summarise(runner.chains, n_draws, start_time)
    return result


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
