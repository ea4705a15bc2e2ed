r"""The criterion of the Gaussian best-subset search, from sufficient statistics, and one
search's incumbent with its certified rounding error.

For a support :math:`S` (columns of X, the intercept always in) the criterion is

.. math::

    \mathcal C(S) = -\ell(S) + \mathrm{pen}(m), \qquad
    \ell(S) = -\tfrac n2\left(\log\frac{2\pi\,\mathrm{RSS}_S}{n} + 1\right),

with :math:`m = \operatorname{rank} X_{c,S}` and :math:`k = m + 1 = \operatorname{rank}[\mathbf
1, X_S]` the number of mean parameters (statsmodels' ``df_model + k_constant``; σ not counted),
exactly as :mod:`l0bayes.selection`.  ``penalty`` is a number :math:`\lambda \ge 0`
(:math:`\mathrm{pen} = \lambda k`), ``"aic"`` (:math:`\lambda = 1`, so :math:`\mathcal C =
\mathrm{AIC}/2`), ``"bic"`` (:math:`\lambda = \tfrac12 \log n`), ``"aicc"`` (Hurvich & Tsai,
:math:`\mathcal C = \mathrm{AICc}/2` with σ counted, :math:`K = k + 1`) or ``"ebic"`` (Chen &
Chen's extended BIC with :math:`\gamma = 1`: :math:`\mathrm{pen} = \tfrac12 k\log n + \log\binom
pm`).  Everything depends on the data only through :class:`GaussianStats` (n, means, the centred
Gram matrix), so the search costs nothing per observation.

:class:`Problem` holds one search's penalty table, admissible sizes and incumbent, whose
objective is always exact and whose rounding error is bounded (:mod:`l0bayes.linear_model.stats`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln

from l0bayes.linear_model.stats import (
    ROUNDING_SAFETY,
    UNIT_ROUNDOFF,
    VIF_LIMIT,
    GaussianStats,
)

MIN_RESIDUAL_DF = 3
r"""A support is admissible only if :math:`n - k(S) \ge 3`: σ̂² must have at least 3 residual
degrees of freedom.  With :math:`\nu` of them :math:`\operatorname{Var}\log\hat\sigma^2 =
\psi'(\nu/2)` is 4.9 for :math:`\nu = 1` and 0.93 for :math:`\nu = 3`, and every criterion is
:math:`\tfrac n2\log\hat\sigma^2` plus a penalty, so nearer the edge it ranks models by noise;
3 is also the smallest :math:`\nu` at which the AICc (σ counted) is finite."""

ENUMERATION_LIMIT = 200_000  # enumerate all supports when there are at most this many
RSS_FLOOR = 1e-14
r"""An RSS below this fraction of the centred :math:`\sum (y - \bar y)^2` is round-off: the
response is an exact linear function of the columns (e.g. a column defined from others). Every
criterion floors the RSS there, so all exact fits tie and the one with fewest columns wins;
below the floor float64 data rank supports by the rounding of their decimal values."""
BATCH = 1 << 20  # float64 entries of one batch of Gram blocks in the enumeration
USABLE = 1e-3  # a Gram-based RSS whose relative error bound exceeds this is recomputed by QR


def check_stats(stats: GaussianStats) -> None:
    if not isinstance(stats, GaussianStats):
        raise ValueError(f"stats must be a GaussianStats, got {type(stats).__name__}")
    if stats.n < 2:
        raise ValueError(f"need at least 2 observations, the statistics hold n = {stats.n}")
    if not stats.yty > 0.0:
        raise ValueError(
            "y is constant: the Gaussian noise scale is 0 and the log-likelihood unbounded, so"
            " there is nothing to select; check that the right column is the response"
        )


# ------------------------------------------------------------------------------ the criterion


def log_comb(p: int, m: np.ndarray | int) -> np.ndarray:
    r""":math:`\log\binom pm`, elementwise."""
    m = np.asarray(m, dtype=np.float64)
    return gammaln(p + 1.0) - gammaln(m + 1.0) - gammaln(p - m + 1.0)


def penalty_values(penalty: str | float, n: int, p: int) -> np.ndarray:
    r"""The penalty :math:`\mathrm{pen}(m)` for m = 0, ..., p non-intercept columns.

    :param penalty: ``"aic"``, ``"bic"``, ``"aicc"``, ``"ebic"`` or a number :math:`\lambda
        \ge 0` (see the module docstring); :math:`k = m + 1`.
    :param n: number of observations.
    :param p: number of candidate columns.
    :returns: array of shape (p + 1,), in :math:`-\ell` units; ``inf`` where undefined.
    """
    k = np.arange(p + 1) + 1.0
    if isinstance(penalty, str):
        name = penalty.lower()
        if name == "aicc":
            K = k + 1.0  # sigma counted, as Hurvich & Tsai
            with np.errstate(divide="ignore"):
                extra = np.where(
                    n - K - 1.0 > 0, K * (K + 1.0) / np.maximum(n - K - 1.0, 1), np.inf
                )
            return K + extra
        if name == "ebic":
            return 0.5 * math.log(n) * k + log_comb(p, k - 1.0)
        lam = {"aic": 1.0, "bic": 0.5 * math.log(n)}.get(name)
        if lam is None:
            raise ValueError(
                f"penalty must be 'aic', 'bic', 'aicc', 'ebic' or λ >= 0, got {penalty!r}"
            )
        return lam * k
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float, np.number)):
        raise ValueError(f"penalty must be 'aic', 'bic', 'aicc', 'ebic' or λ >= 0, got {penalty!r}")
    if not (math.isfinite(penalty) and penalty >= 0.0):
        raise ValueError(f"penalty λ must be finite and >= 0, got {penalty}")
    return float(penalty) * k


def admissible_max_size(n: int, p: int) -> int:
    r"""The largest model size m (columns besides the intercept) that the search considers.

    Two rules, both documented in the module:

    * residual degrees of freedom: :math:`n - (m + 1) \ge` ``MIN_RESIDUAL_DF``;
    * selection budget: :math:`\log\binom pm \le n/2`.  Under pure noise the best of the
      :math:`\binom pm` supports of size m gains about
      :math:`\tfrac{n}{n - m - 1}\log\binom pm` in log-likelihood (the union bound on
      :math:`\mathrm{RSS}_S/\mathrm{RSS}_\emptyset \sim \mathrm{Beta}(\tfrac{n-1-m}2, \tfrac m2)`),
      which outgrows any fixed per-parameter penalty (AIC, BIC) once :math:`\log\binom pm` is
      of the order of n: an exhaustive search then fits noise, up to an exact fit.  The budget
      never binds when :math:`p \le n / (2\log 2)`, since :math:`\log\binom pm \le p\log 2`.

    For n = 10, p = 50 this gives 1; for n = 30, p = 300 it gives 2.

    :param n: number of observations.
    :param p: number of candidate columns.
    :returns: the maximal admissible size (0 allows only the intercept-only model).
    """
    by_df = max(n - 1 - MIN_RESIDUAL_DF, 0)
    sizes = np.arange(min(by_df, p) + 1)
    within = log_comb(p, sizes) <= 0.5 * n
    return int(sizes[within].max())


def neg_loglik(rss: np.ndarray | float, stats: GaussianStats) -> np.ndarray:
    r""":math:`-\ell = \tfrac n2(\log(2\pi\,\mathrm{RSS}/n) + 1)`, RSS floored at round-off."""
    rss = np.maximum(rss, RSS_FLOOR * stats.yty)
    return 0.5 * stats.n * (np.log(2.0 * math.pi * rss / stats.n) + 1.0)


@dataclass(frozen=True)
class Factor:
    r"""The inverse Gram matrix :math:`H = G_{SS}^{-1}` and RSS of a support, with the bounds on
    their rounding errors that the search needs (:mod:`l0bayes.linear_model.stats`).

    ``exact``: factorised from the square root by QR (``rss_error`` from
    :func:`~l0bayes.linear_model.stats.qr_rss_error`), or reached by ``steps`` rank-one
    downdates of an inverse since the last QR, whose error ``base_error`` the downdates carry
    on; ``rss_error`` then adds the Gram bound
    :func:`~l0bayes.linear_model.stats.gram_rss_error`, which holds for the RSS of every
    support below this one reached by downdates (the computed values are exact for a nearby
    Gram matrix)."""

    H: np.ndarray
    rss: float
    rss_error: float
    exact: bool
    steps: int = 0
    base_error: float = 0.0


def solve_support(stats: GaussianStats, cols: np.ndarray) -> Factor | None:
    r"""The :class:`Factor` of the support ``cols`` from the square root of the statistics
    (:meth:`GaussianStats.exact_rss`), or ``None`` if its columns are numerically dependent
    (a VIF :math:`G_{jj}H_{jj} \ge` ``VIF_LIMIT``)."""
    if cols.size == 0:
        return Factor(np.zeros((0, 0)), stats.yty, 0.0, True)
    fit = stats.exact_rss(cols)
    if fit.dependent:
        return None
    return Factor(fit.inverse_gram(), fit.rss, fit.rss_error, True, 0, fit.rss_error)


def increment_error(factor: Factor, stats: GaussianStats, vif_sum: float):
    r"""A function bounding the absolute error of the single-drop increments
    :math:`\delta_j = \hat\beta_j^2 / H_{jj}` of a QR factor: :math:`\delta_j = (t_j^\top q)^2 /
    \|t_j\|^2` with :math:`t_j` a row of :math:`R^{-1}` and :math:`q` the part of y in the span,
    accurate to :math:`\epsilon\kappa(R)\|q\|` with :math:`\kappa(R)^2 \le k V`.  0 for a
    downdated factor, whose ``rss_error`` covers every RSS of the subtree."""
    k, yty = factor.H.shape[0], stats.yty
    if not factor.exact:
        return lambda delta: np.zeros(np.shape(delta))
    eps = ROUNDING_SAFETY * (stats.root.shape[0] + k + 2) * UNIT_ROUNDOFF
    eps *= math.sqrt(max(k * vif_sum, 1.0))
    return lambda delta: 2.0 * eps * np.sqrt(np.maximum(delta, 0.0) * yty) + eps**2 * yty


@dataclass(frozen=True)
class GaussianCriteria:
    r"""Criteria of one support: ``k`` mean parameters (:math:`\operatorname{rank}[\mathbf 1,
    X_S]`), the OLS ``rss`` and ``log_likelihood``, :math:`\mathrm{AIC} = -2\ell + 2k`,
    :math:`\mathrm{BIC} = -2\ell + k\log n` and :math:`\mathrm{AICc} = -2\ell + 2K + 2K(K+1)/(n
    - K - 1)` with :math:`K = k + 1` (σ counted: statsmodels' ``info_criteria("aicc",
    dk_params=1)``)."""

    k: int
    rss: float
    log_likelihood: float
    aic: float
    bic: float
    aicc: float


def gaussian_criteria(stats: GaussianStats, support: object) -> GaussianCriteria:
    """Log-likelihood, AIC, BIC and AICc of the OLS refit on ``support`` (boolean mask), with
    the RSS from a QR of the square root of the statistics (accurate to
    :func:`~l0bayes.linear_model.stats.qr_rss_error`, i.e. as statsmodels' own fit).

    :param stats: sufficient statistics.
    :param support: boolean mask of length p; its columns must be linearly independent.
    :returns: a :class:`GaussianCriteria`.
    """
    check_stats(stats)
    cols = np.flatnonzero(check_support(support, stats.p))
    solved = solve_support(stats, cols)
    if solved is None:
        raise ValueError(f"the columns {cols.tolist()} are linearly dependent (a VIF >= 1e10)")
    k, n = cols.size + 1, stats.n
    if n - k < 1:
        raise ValueError(f"k = {k} parameters for n = {n}: the fit is exact, σ̂ = 0")
    rss = solved.rss
    llf = -float(neg_loglik(rss, stats))
    K = k + 1
    aicc = -2 * llf + 2 * K * n / (n - K - 1) if n - K - 1 > 0 else math.inf
    return GaussianCriteria(k, rss, llf, -2 * llf + 2 * k, -2 * llf + k * math.log(n), aicc)


def subset_objective(stats: GaussianStats, support: object, penalty: str | float = "bic") -> float:
    r"""The objective :math:`-\ell(S) + \mathrm{pen}(|S|)` of one support (``inf`` if its columns
    are dependent or it leaves fewer than ``MIN_RESIDUAL_DF`` residual degrees of freedom).

    :param stats: sufficient statistics.
    :param support: boolean mask of length p.
    :param penalty: see :func:`penalty_values`.
    :returns: the objective, in :math:`-\ell` units (AIC/2 for ``"aic"``).
    """
    check_stats(stats)
    cols = np.flatnonzero(check_support(support, stats.p))
    pen = penalty_values(penalty, stats.n, stats.p)
    solved = solve_support(stats, cols)
    if solved is None or stats.n - cols.size - 1 < MIN_RESIDUAL_DF:
        return math.inf
    return float(neg_loglik(solved.rss, stats) + pen[cols.size])


def check_support(support: object, p: int) -> np.ndarray:
    mask = np.asarray(support)
    if mask.dtype != np.bool_ or mask.shape != (p,):
        raise ValueError(
            f"support must be a boolean mask of length {p}, got {mask.dtype} {mask.shape}"
        )
    return mask


def same_span(stats: GaussianStats, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the supports ``a`` and ``b`` span the same column space (e.g. duplicated
    columns): then they are one model, with equal fits and equal numbers of parameters."""
    if a.size != b.size:
        return False
    union = np.union1d(a, b)
    if union.size == a.size:
        return True
    A = stats.root[:, union]
    R = np.linalg.qr(A / np.sqrt(np.einsum("ij,ij->j", A, A)), mode="r")
    singular = np.linalg.svd(R, compute_uv=False)
    return int((singular > singular[0] / math.sqrt(VIF_LIMIT)).sum()) == a.size


# ---------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SubsetSearchResult:
    r"""Outcome of a best-subset search.

    ``support`` (bool mask), its ``objective`` :math:`-\ell + \mathrm{pen}`, ``optimal`` (the
    search proved that no admissible support of size at most ``max_size`` is better, with
    every score's rounding error accounted for), ``gap`` (a proven bound on ``objective`` minus
    the optimum; 0 when optimal), ``nodes`` (supports scored), ``seconds``, the ``max_size``
    searched and ``size_capped`` (the selection budget of :func:`admissible_max_size`, not the
    residual degrees of freedom, set ``max_size``: the caller should warn that the criterion
    was restricted); ``objective_error`` (a bound on the rounding error of ``objective``),
    ``ties`` (supports with another column space whose objective could not be told apart from
    the answer's at float64 precision: the answer is then not certified) and ``exact_scores``
    (supports re-scored by QR because the fast formulas could not separate them).
    """

    support: np.ndarray
    objective: float
    optimal: bool
    gap: float
    nodes: int
    seconds: float
    max_size: int
    size_capped: bool
    objective_error: float = 0.0
    ties: tuple[np.ndarray, ...] = field(default=())
    exact_scores: int = 0


class Problem:
    r"""Stats, penalty table and the admissible size range of one search, and its incumbent.

    The incumbent's objective is always exact (a QR of the square root); the fast formulas
    only offer candidates through :meth:`offer` with a *lower bound* on their objective, which
    includes the bound on their rounding error.  A candidate that may beat or tie the incumbent
    is scored exactly; one whose exact objective lies within both error bounds of the
    incumbent's is a tie (:meth:`ties`)."""

    def __init__(self, stats: GaussianStats, penalty: str | float, max_size: int | None) -> None:
        check_stats(stats)
        self.stats, self.n, self.p = stats, stats.n, stats.p
        self.pen = penalty_values(penalty, self.n, self.p)
        cap = admissible_max_size(self.n, self.p)
        by_df = min(max(self.n - 1 - MIN_RESIDUAL_DF, 0), self.p)
        if max_size is not None:
            if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)):
                raise ValueError(f"max_size must be a non-negative integer, got {max_size!r}")
            if max_size < 0:
                raise ValueError(f"max_size must be a non-negative integer, got {max_size!r}")
        self.max_size = min(cap, by_df) if max_size is None else min(int(max_size), by_df)
        self.size_capped = max_size is None and cap < by_df
        self.pen = np.where(np.arange(self.p + 1) <= self.max_size, self.pen, np.inf)
        self.best_cols, self.best, self.best_error = np.zeros(0, dtype=np.intp), math.inf, 0.0
        self.near: list[tuple[np.ndarray, float, float]] = []
        self.exact_scores = 0

    def objective(self, rss: float | np.ndarray, m: int | np.ndarray) -> np.ndarray:
        return neg_loglik(rss, self.stats) + self.pen[m]

    def mask(self, cols: Iterable[int]) -> np.ndarray:
        out = np.zeros(self.p, dtype=bool)
        out[list(cols)] = True
        return out

    def exact(self, cols: np.ndarray) -> tuple[float, float]:
        """Objective of one support from a QR of the square root (``inf`` if inadmissible) and
        the bound on its rounding error, in objective units."""
        if cols.size > self.max_size:
            return math.inf, 0.0
        solved = solve_support(self.stats, cols)
        if solved is None:
            return math.inf, 0.0
        rss, err = solved.rss, solved.rss_error
        value = float(self.objective(rss, cols.size))
        # the objective floors the RSS at round-off (RSS_FLOOR): an exact fit is exact
        floor = RSS_FLOOR * self.stats.yty
        mid, low, high = max(rss, floor), max(rss - err, floor), max(rss + err, floor)
        return value, 0.5 * self.n * max(math.log(high / mid), math.log(mid / low))

    def score(self, cols: np.ndarray) -> float:
        """Exact objective of one support (``inf`` if inadmissible)."""
        return self.exact(cols)[0]

    def limit(self) -> float:
        """Supports whose objective may lie below this can beat or tie the incumbent."""
        return self.best + self.best_error

    def offer(self, cols: np.ndarray, lower: float = -math.inf) -> None:
        """Score ``cols`` exactly if its lower bound ``lower`` does not rule it out; make it
        the incumbent if it is better beyond both error bounds, record it if it ties."""
        if lower > self.limit():
            return
        cols = np.sort(np.asarray(cols, dtype=np.intp))
        value, error = self.exact(cols)
        self.exact_scores += 1
        if not math.isfinite(value) or value - error > self.limit():
            return
        if value + error < self.best - self.best_error:
            self.near.append((self.best_cols, self.best, self.best_error))
            self.best_cols, self.best, self.best_error = cols, value, error
        elif value < self.best:  # a tie, by a hair better: it becomes the answer
            self.near.append((self.best_cols, self.best, self.best_error))
            self.best_cols, self.best, self.best_error = cols, value, error
        else:
            self.near.append((cols, value, error))

    def ties(self) -> list[tuple[np.ndarray, float, float]]:
        """The recorded supports that the incumbent cannot be told apart from: within both
        error bounds and of another column space."""
        out, seen = [], set()
        for cols, value, error in self.near:
            key = cols.tobytes()
            if key in seen or np.array_equal(cols, self.best_cols):
                continue
            seen.add(key)
            if value - error <= self.limit() and not same_span(self.stats, cols, self.best_cols):
                out.append((cols, value, error))
        return out


def search_result(prob: Problem, gap: float, nodes: int, start: float) -> SubsetSearchResult:
    """The search's answer: the incumbent, certified when the search was exhausted (``gap``
    0) and no tie remains; a tie's possible advantage is the gap."""
    ties = prob.ties()
    for _, value, error in ties:
        gap = max(gap, prob.best + prob.best_error - (value - error))
    return SubsetSearchResult(
        support=prob.mask(prob.best_cols),
        objective=prob.best,
        optimal=gap <= 0.0 and not ties,
        gap=max(gap, 0.0),
        nodes=nodes,
        seconds=time.perf_counter() - start,
        max_size=prob.max_size,
        size_capped=prob.size_capped,
        objective_error=prob.best_error,
        ties=tuple(cols for cols, _, _ in ties),
        exact_scores=prob.exact_scores,
    )


__all__ = [
    "BATCH",
    "ENUMERATION_LIMIT",
    "MIN_RESIDUAL_DF",
    "RSS_FLOOR",
    "USABLE",
    "Factor",
    "GaussianCriteria",
    "Problem",
    "SubsetSearchResult",
    "admissible_max_size",
    "check_stats",
    "check_support",
    "gaussian_criteria",
    "increment_error",
    "log_comb",
    "neg_loglik",
    "penalty_values",
    "same_span",
    "search_result",
    "solve_support",
    "subset_objective",
]
