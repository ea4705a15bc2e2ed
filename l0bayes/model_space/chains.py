r"""Markov chains over models: MC3 and weighted tempered Gibbs over any scorer, pooled
Rao–Blackwellised inclusion probabilities and their Monte Carlo error.

Two samplers (:data:`SAMPLERS`), both over any
:class:`~l0bayes.model_space.scorer.ModelScorer`:

* ``"mh"``, MC3 (Madigan & York 1995): from :math:`\gamma`, with probability 1/2 flip one gate
  :math:`j` (uniform over :math:`p`: add or delete), else swap a uniform included feature with a
  uniform excluded one (a swap from the empty or full model is rejected, which keeps the
  proposal symmetric); accept with :math:`\min(1, p(y \mid \gamma') p(\gamma') / p(y \mid
  \gamma) p(\gamma))`.
* ``"tempered"``, weighted tempered Gibbs (Zanella & Roberts 2019, :func:`tempered_selection`):
  every iteration flips one gate, chosen from the neighbourhood's conditionals; the chain
  targets :math:`p(\gamma \mid y) Z(\gamma)` and importance weights :math:`1/Z(\gamma)` restore
  the posterior. The chains advance in lockstep, one batched neighbourhood per iteration.

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

import numpy as np
from scipy.special import expit

from l0bayes.model_space.convergence import PIP_TOLERANCE, effective_sample_size, split_rhat
from l0bayes.model_space.scorer import ModelScorer, model_key
from l0bayes.validation import check_choice, check_count, check_positive


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


# ------------------------------------------------------------------------------- result
@dataclass(frozen=True)
class MC3Result:
    r"""PIPs and diagnostics of :func:`mc3`.

    :param inclusion_probs: pooled Rao–Blackwellised PIPs, shape ``(p,)``.
    :param chain_inclusion_probs: per chain, shape ``(chains, p)``.
    :param pip_se: Monte Carlo standard error of each pooled PIP.
    :param pip_spread: :math:`\max_j (\max_c - \min_c)` of the chains' PIPs.
    :param rhat: largest split-:math:`\hat R` over features of the thinned, weight-scaled RB
        traces (:func:`pip_rhat`).
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
    columns if ``p > n - 2``), then random models of at most ``n - 2`` columns (the largest
    for which the conjugate priors are proper): each column in with probability
    :math:`\min(1/2, (n - 2) / (2p))`."""
    rng = np.random.default_rng(seed)
    largest = min(p, max(n - 2, 0))
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


def linearised_pips(rb_trace: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""What each draw contributes to the self-normalised PIP estimates, from the thinned
    traces ``(chains, draws, p)`` and weights ``(chains, draws)``: :math:`z_{ctj} =
    (w_{ct} / \bar w)(h_{ctj} - \hat\pi_j)` (the delta method for a ratio estimator;
    :math:`z = h - \hat\pi` for equal weights). The estimates' Monte Carlo error and
    convergence are those of the means of :math:`z`: a visit that carries no weight (a tempered
    chain's excursion to an improbable neighbour) contributes nothing, whatever its
    :math:`h`."""
    scaled = weights / weights.mean() if weights.mean() > 0 else np.ones_like(weights)
    mean = (scaled[..., None] * rb_trace).sum(axis=(0, 1)) / scaled.sum()
    return scaled[..., None] * (rb_trace - mean)


def _pip_se(z: np.ndarray) -> np.ndarray:
    r"""Standard errors of the self-normalised PIP estimates, :math:`\mathrm{sd}(z_j) /
    \sqrt{\mathrm{ESS}(z_j)}` of their linearised traces ``z`` (:func:`linearised_pips`)."""
    ess = np.array([effective_sample_size(z[:, :, j]) for j in range(z.shape[2])])
    return z.std(axis=(0, 1)) / np.sqrt(ess)


def pip_rhat(z: np.ndarray) -> float:
    r"""The largest split-:math:`\hat R` over features of the linearised PIP traces ``z``
    (:func:`linearised_pips`), resolved to
    :data:`~l0bayes.model_space.convergence.PIP_TOLERANCE`
    (:func:`~l0bayes.model_space.convergence.split_rhat`), 1 when none varies:
    the half-chains' weighted PIP estimates against the spread of the draws' contributions.

    Two false alarms of the plain :math:`\hat R` of the RB traces are avoided: a tempered
    chain keeps visiting neighbours of no posterior weight, where :math:`h` differs (weights
    scale them out); and a PIP near 0 or 1 has a trace varying by round-off whose half-chains
    "disagree" by 1e-9 (the resolution). Half-chains stuck in different models still differ
    by far more than the resolution and still give a large :math:`\hat R`."""
    varying = z.std(axis=(0, 1)) > 0
    return max(
        [split_rhat(z[:, :, j], resolution=PIP_TOLERANCE) for j in np.flatnonzero(varying)],
        default=1.0,
    )


def _summarise(chains: list[_Chain], n_draws: int, start: float) -> MC3Result:
    step = max(1, -(-len(chains[0].rb_trace) // n_draws))
    rb_trace = np.stack([np.array(c.rb_trace[::step]) for c in chains])
    weight_trace = np.stack([np.array(c.weight_trace[::step]) for c in chains])
    chain_pips = np.array([c.rb_sum / c.weight_sum for c in chains])
    z = linearised_pips(rb_trace, weight_trace)
    best = max(chains, key=lambda c: c.best_log_post)
    log_post = np.array([c.log_post for c in chains])
    efficiency = weight_efficiency(np.array([c.weight for c in chains]))
    return MC3Result(
        inclusion_probs=chain_pips.mean(axis=0),
        chain_inclusion_probs=chain_pips,
        pip_se=_pip_se(z),
        pip_spread=float(np.ptp(chain_pips, axis=0).max()),
        rhat=pip_rhat(z),
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


__all__ = [
    "PROGRESS_EVERY",
    "SAMPLERS",
    "MC3Result",
    "conditional_inclusion",
    "default_starts",
    "linearised_pips",
    "pip_rhat",
    "run_chains",
    "tempered_selection",
    "weight_efficiency",
]
