r"""Certified best-subset selection for the Gaussian linear model, from sufficient statistics.

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

:func:`certified_best_subset` is a branch and bound over the drop-column tree of Furnival &
Wilson's leaps and bounds (1974): a node is a support :math:`S` whose first columns F are forced
in; its subtree holds every :math:`T` with :math:`F \subseteq T \subseteq S`.  Because RSS can only
grow when columns are dropped, and dropping a set D of columns costs at least the largest of
their single-drop increments :math:`\delta_j = \mathrm{RSS}_{S\setminus j} - \mathrm{RSS}_S`,

.. math::

    \min_{F \subseteq T \subseteq S} \mathcal C(T) \;\ge\; \min_{d = 0}^{|S| - |F|}
    \left[\tfrac n2 \log\left(\mathrm{RSS}_S + \delta_{(d)}\right) + \mathrm{pen}(|S| - d)\right]
    + \text{const},

where :math:`\delta_{(d)}` is the d-th smallest increment among the free columns
(:math:`\delta_{(0)} = 0`).  A node whose bound is no better than the incumbent is pruned; when the
tree is exhausted the incumbent is optimal.  Each node is obtained from its parent by a rank-one
downdate of the inverse Gram matrix, :math:`O(|S|^2)`.

References

1. Furnival, G. M. & Wilson, R. W. (1974). Regressions by leaps and bounds. Technometrics 16.
2. Hurvich, C. M. & Tsai, C.-L. (1989). Regression and time series model selection in small
   samples. Biometrika 76.
3. Chen, J. & Chen, Z. (2008). Extended Bayesian information criteria for model selection with
   large model spaces. Biometrika 95.
4. Chan, T. F., Golub, G. H. & LeVeque, R. J. (1979). Updating formulae and a pairwise
   algorithm for computing sample variances. Stanford CS report 79-773.
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
    gram_rss_error,
    qr_rss_error,
)
from l0bayes.model_space.scorer import support_batches

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
_BATCH = 1 << 20  # float64 entries of one batch of Gram blocks in the enumeration
_USABLE = 1e-3  # a Gram-based RSS whose relative error bound exceeds this is recomputed by QR


def _check_stats(stats: GaussianStats) -> None:
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


def _neg_loglik(rss: np.ndarray | float, stats: GaussianStats) -> np.ndarray:
    r""":math:`-\ell = \tfrac n2(\log(2\pi\,\mathrm{RSS}/n) + 1)`, RSS floored at round-off."""
    rss = np.maximum(rss, RSS_FLOOR * stats.yty)
    return 0.5 * stats.n * (np.log(2.0 * math.pi * rss / stats.n) + 1.0)


@dataclass(frozen=True)
class _Factor:
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


def _solve_support(stats: GaussianStats, cols: np.ndarray) -> _Factor | None:
    r"""The :class:`_Factor` of the support ``cols`` from the square root of the statistics
    (:meth:`GaussianStats.exact_rss`), or ``None`` if its columns are numerically dependent
    (a VIF :math:`G_{jj}H_{jj} \ge` ``VIF_LIMIT``)."""
    if cols.size == 0:
        return _Factor(np.zeros((0, 0)), stats.yty, 0.0, True)
    fit = stats.exact_rss(cols)
    if fit.dependent:
        return None
    return _Factor(fit.inverse_gram(), fit.rss, fit.rss_error, True, 0, fit.rss_error)


def _increment_error(factor: _Factor, stats: GaussianStats, vif_sum: float):
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
    _check_stats(stats)
    cols = np.flatnonzero(_check_support(support, stats.p))
    solved = _solve_support(stats, cols)
    if solved is None:
        raise ValueError(f"the columns {cols.tolist()} are linearly dependent (a VIF >= 1e10)")
    k, n = cols.size + 1, stats.n
    if n - k < 1:
        raise ValueError(f"k = {k} parameters for n = {n}: the fit is exact, σ̂ = 0")
    rss = solved.rss
    llf = -float(_neg_loglik(rss, stats))
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
    _check_stats(stats)
    cols = np.flatnonzero(_check_support(support, stats.p))
    pen = penalty_values(penalty, stats.n, stats.p)
    solved = _solve_support(stats, cols)
    if solved is None or stats.n - cols.size - 1 < MIN_RESIDUAL_DF:
        return math.inf
    return float(_neg_loglik(solved.rss, stats) + pen[cols.size])


def _check_support(support: object, p: int) -> np.ndarray:
    mask = np.asarray(support)
    if mask.dtype != np.bool_ or mask.shape != (p,):
        raise ValueError(
            f"support must be a boolean mask of length {p}, got {mask.dtype} {mask.shape}"
        )
    return mask


def _same_span(stats: GaussianStats, a: np.ndarray, b: np.ndarray) -> bool:
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


class _Problem:
    r"""Stats, penalty table and the admissible size range of one search, and its incumbent.

    The incumbent's objective is always exact (a QR of the square root); the fast formulas
    only offer candidates through :meth:`offer` with a *lower bound* on their objective, which
    includes the bound on their rounding error.  A candidate that may beat or tie the incumbent
    is scored exactly; one whose exact objective lies within both error bounds of the
    incumbent's is a tie (:meth:`ties`)."""

    def __init__(self, stats: GaussianStats, penalty: str | float, max_size: int | None) -> None:
        _check_stats(stats)
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
        return _neg_loglik(rss, self.stats) + self.pen[m]

    def mask(self, cols: Iterable[int]) -> np.ndarray:
        out = np.zeros(self.p, dtype=bool)
        out[list(cols)] = True
        return out

    def exact(self, cols: np.ndarray) -> tuple[float, float]:
        """Objective of one support from a QR of the square root (``inf`` if inadmissible) and
        the bound on its rounding error, in objective units."""
        if cols.size > self.max_size:
            return math.inf, 0.0
        solved = _solve_support(self.stats, cols)
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
            if value - error <= self.limit() and not _same_span(self.stats, cols, self.best_cols):
                out.append((cols, value, error))
        return out


def _result(prob: _Problem, gap: float, nodes: int, start: float) -> SubsetSearchResult:
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


# ------------------------------------------------------------------------------ enumeration


def _batched_rss(stats: GaussianStats, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Lower bounds on the RSS of each support ``idx[b]`` (B, m) from the Gram matrix, with
    their rounding error (:func:`~l0bayes.linear_model.stats.gram_rss_error`) taken off:
    ``inf`` where the columns are certainly dependent, 0 where the fast formulas cannot tell
    (a VIF within a factor 2 of ``VIF_LIMIT``, or a numerically singular block): such
    supports are scored exactly.  Returns (lower bounds, fast RSS)."""
    batch, m = idx.shape
    if m == 0:
        return np.full(batch, stats.yty), np.full(batch, stats.yty)
    G = stats.gram[idx[:, :, None], idx[:, None, :]]
    scale = np.sqrt(np.diagonal(G, axis1=1, axis2=2))
    C = G / (scale[:, :, None] * scale[:, None, :])
    C = np.where(np.isfinite(C), C, 0.0)
    eig_min = np.linalg.eigvalsh(C)[:, 0]
    invertible = eig_min > 1e3 * m * UNIT_ROUNDOFF
    C[~invertible] = np.eye(m)
    Cinv = np.linalg.inv(C)
    vif = np.diagonal(Cinv, axis1=1, axis2=2)
    w = stats.xty[idx] / scale
    rss = stats.yty - np.einsum("bi,bij,bj->b", w, Cinv, w)
    relative = gram_rss_error(rss, stats.yty, vif.sum(axis=1), stats.p, m)
    lower = rss * (1.0 - np.minimum(relative, 1.0))
    dependent = invertible & (vif.max(axis=1) >= 2.0 * VIF_LIMIT)
    certain = invertible & (vif.max(axis=1) < 0.5 * VIF_LIMIT)
    lower = np.where(dependent, np.inf, np.where(certain, lower, 0.0))
    return lower, np.where(invertible, rss, np.nan)


def _enumerate(prob: _Problem, sizes: Iterable[int]) -> int:
    """Offer every support of the given sizes (size then lexicographic order) to the
    incumbent; the fast formulas rule out most of them.  Returns how many were scored."""
    count = 0
    for m in sizes:
        for idx in support_batches(prob.p, m, max(1, _BATCH // max(m * m, 1))):
            lower = prob.objective(_batched_rss(prob.stats, idx)[0], m)
            count += len(idx)
            for i in np.flatnonzero(lower <= prob.limit())[
                np.argsort(lower[lower <= prob.limit()], kind="stable")
            ]:
                prob.offer(idx[i], float(lower[i]))
    return count


def _n_supports(p: int, max_size: int) -> float:
    return float(np.exp(log_comb(p, np.arange(max_size + 1))).sum())


def exhaustive_best_subset(
    stats: GaussianStats,
    penalty: str | float = "bic",
    *,
    max_size: int | None = None,
    max_p: int = 20,
) -> SubsetSearchResult:
    r"""Plain enumeration of every admissible support (the reference for the tests).

    Scores all supports of size 0, ..., ``max_size`` (default :func:`admissible_max_size`) by a
    batched solve of their Gram blocks, re-scoring by QR every support that the Gram formulas
    cannot rule out.  Ties go to the smaller support, then to the lexicographically first;
    a tie that float64 cannot resolve leaves ``optimal`` False (``ties``).

    :param stats: sufficient statistics.
    :param penalty: see :func:`penalty_values`.
    :param max_size: largest support size (capped by the residual degrees of freedom).
    :param max_p: refuse problems with more columns than this.
    :returns: a :class:`SubsetSearchResult`.
    """
    start = time.perf_counter()
    if stats.p > max_p:
        raise ValueError(f"exhaustive search over 2**{stats.p} supports refused (max_p = {max_p})")
    prob = _Problem(stats, penalty, max_size)
    count = _enumerate(prob, range(prob.max_size + 1))
    return _result(prob, 0.0, count, start)


# --------------------------------------------------------------------------- local search


def _neighbour_rss(stats: GaussianStats, cols: np.ndarray) -> tuple[np.ndarray, ...]:
    r"""RSS after adding each column j, dropping each i in S, and swapping i for j.

    With :math:`H = G_{SS}^{-1}`, :math:`B = A_{:,S} H` (A the augmented co-moment matrix),
    the Schur complement :math:`C = A - B A_{S,:}` gives :math:`\mathrm{RSS}_{S+j} =
    C_{yy} - C_{jy}^2 / C_{jj}`; dropping i adds back :math:`B_{:,i} B_{:,i}^\top / H_{ii}`.
    Returns (add (p,), drop (|S|,), swap (|S|, p)); ``inf`` where a column is collinear.
    These only rank the moves of the local search, whose every step is re-scored exactly.
    """
    A = stats.augmented
    factor = _solve_support(stats, cols)
    H, rss = factor.H, factor.rss
    W = A[:, cols]
    B = W @ H
    diag = np.diag(A) - np.einsum("jk,jk->j", B, W)
    cy = A[:, -1] - B @ W[-1]
    tol = np.diag(A)[:-1] / VIF_LIMIT
    c_jj, c_jy = diag[:-1], cy[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        add = np.where(c_jj > tol, rss - c_jy**2 / c_jj, np.inf)
        h = np.diag(H)
        drop = rss + B[-1] ** 2 / h
        d_ij = c_jj[None, :] + B[:-1].T ** 2 / h[:, None]
        e_ij = c_jy[None, :] + B[:-1].T * B[-1][:, None] / h[:, None]
        swap = np.where(d_ij > tol[None, :], drop[:, None] - e_ij**2 / d_ij, np.inf)
    add[cols] = np.inf
    swap[:, cols] = np.inf
    return add, drop, swap


def _moved(cols: np.ndarray, kind: str, at: tuple[int, ...]) -> np.ndarray:
    """The support after the move ``kind`` at index ``at`` of :func:`_neighbour_rss`'s arrays."""
    if kind == "add":
        return np.sort(np.append(cols, at[0]))
    if kind == "drop":
        return np.delete(cols, at[0])
    return np.sort(np.append(np.delete(cols, at[0]), at[1]))


def _improve(prob: _Problem, cols: np.ndarray, value: float) -> tuple[np.ndarray, float, int]:
    """Best-improvement add/drop/swap search from ``cols`` (exact objective ``value``)."""
    moves = 0
    while True:
        add, drop, swap = _neighbour_rss(prob.stats, cols)
        m = cols.size
        candidates = {
            "add": prob.objective(add, min(m + 1, prob.p)) if m < prob.max_size else add + np.inf,
            "drop": prob.objective(drop, m - 1) if m else drop,
            "swap": prob.objective(swap, m),
        }
        moves += add.size + drop.size + swap.size
        kind, best, at = None, value - 1e-12 * (1 + abs(value)), ()
        for name, values in candidates.items():
            if values.size and np.min(values) < best:
                at = np.unravel_index(int(np.argmin(values)), values.shape)
                kind, best = name, float(values[at])
        if kind is None:
            return cols, value, moves
        candidate = _moved(cols, kind, at)
        exact = prob.score(candidate)
        if not exact < value:  # round-off in the update formulas: stop
            return cols, value, moves
        cols, value = candidate, exact


def _forward_path(prob: _Problem) -> tuple[np.ndarray, float]:
    """Greedy forward selection up to ``max_size``; the best prefix of the path."""
    cols, value = np.zeros(0, dtype=np.intp), prob.score(np.zeros(0, dtype=np.intp))
    best_cols, best = cols, value
    while cols.size < prob.max_size:
        add = _neighbour_rss(prob.stats, np.sort(cols))[0]
        if not np.isfinite(add).any():
            break
        cols = np.append(cols, int(np.argmin(add)))
        value = prob.score(np.sort(cols))
        if not math.isfinite(value):
            break
        if value < best:
            best_cols, best = np.sort(cols), value
    return best_cols, best


def heuristic_best_subset(
    stats: GaussianStats,
    penalty: str | float = "bic",
    *,
    start: np.ndarray | None = None,
    max_size: int | None = None,
) -> SubsetSearchResult:
    """Greedy forward selection then best-improvement add/drop/swap local search (no proof).

    The search starts from the best prefix of the forward path and, if given, from ``start``
    (a boolean mask); the better local optimum is returned, with ``gap = inf``.

    :param stats: sufficient statistics.
    :param penalty: see :func:`penalty_values`.
    :param start: optional boolean mask of a support to polish as well.
    :param max_size: largest support size.
    :returns: a :class:`SubsetSearchResult` (``optimal`` False unless p = 0).
    """
    t0 = time.perf_counter()
    prob = _Problem(stats, penalty, max_size)
    nodes = _polish(prob, start)
    return _result(prob, math.inf if prob.p else 0.0, nodes, t0)


def _polish(prob: _Problem, start: np.ndarray | None) -> int:
    """Local searches from the forward path and from ``start``; the better local optimum is
    offered to the incumbent.  Returns the number of moves scored."""
    starts = [_forward_path(prob)]
    if start is not None:
        cols = np.flatnonzero(_check_support(start, prob.p))
        starts.append((cols, prob.score(cols)))
    nodes = 0
    for cols, value in starts:
        if not np.isfinite(value):
            continue
        cols, value, count = _improve(prob, cols, value)
        nodes += count
        prob.offer(cols)
    return nodes


# ------------------------------------------------------------------------- branch and bound


@dataclass
class _Node:
    """A support ``cols`` whose first ``n_fixed`` columns are forced in.

    ``parent`` = (factor, keep, j) of the parent's :class:`_Factor`, the positions ``keep`` of
    ``cols`` in the parent and the dropped position j, for the lazy rank-one downdate
    :math:`H' = H_{kk} - H_{kj}H_{jk}/H_{jj}`; ``None``: factorise from scratch.
    """

    cols: np.ndarray
    n_fixed: int
    rss: float  # the RSS of cols (from the parent), or a lower bound on it
    rss_error: float  # the error of rss that its downdates inherit (the exact part)
    bound: float  # a lower bound on the objective of every support of the subtree
    eig_min: float  # a lower bound on the smallest eigenvalue of the correlation of cols
    parent: tuple[_Factor, np.ndarray, int] | None = None


def _min_eig(stats: GaussianStats, cols: np.ndarray) -> float:
    """A lower bound on the smallest eigenvalue of the correlation matrix of the columns
    ``cols`` (0 if singular): the computed value less its rounding error."""
    if cols.size == 0:
        return 1.0
    G = stats.gram[np.ix_(cols, cols)]
    scale = np.sqrt(np.maximum(np.diag(G), 1e-300))
    eig = float(np.linalg.eigvalsh(G / np.outer(scale, scale))[0])
    return max(eig - ROUNDING_SAFETY * (stats.p + 2) * cols.size * UNIT_ROUNDOFF, 0.0)


class _BranchAndBound:
    r"""Depth-first leaps-and-bounds search over the drop-column tree (module docstring).

    Dropping the free columns D from a node S raises the RSS by
    :math:`\hat\beta_D^\top (H_{DD})^{-1} \hat\beta_D`, which is at least the largest
    single-drop increment :math:`\max_{j\in D}\delta_j` and at least :math:`\mu \sum_{j\in D}
    b_j^2`, where :math:`b_j = \hat\beta_j \sqrt{G_{jj}}` and :math:`\mu` is the smallest
    eigenvalue of the correlation matrix of S (Cauchy interlacing: it only grows down the tree,
    so a node inherits its parent's).  :meth:`size_bound` minimises the larger of the two over
    the number of drops.  Every RSS and increment enters a bound less its rounding error, so
    the bounds hold for the exact objective; a node whose downdated inverse has a relative RSS
    error above ``_USABLE`` is factorised again by QR.
    """

    def __init__(self, prob: _Problem) -> None:
        self.prob = prob
        self.gram_diag = np.diag(prob.stats.gram).copy()
        self.nodes = 0
        self.stack: list[_Node] = []

    def factor(self, node: _Node) -> _Factor | None:
        """The node's factor: downdated from its parent's, or from scratch when it has no
        parent or the downdates have lost too much accuracy; ``None`` if dependent."""
        stats = self.prob.stats
        if node.parent is None:
            return _solve_support(stats, node.cols)
        parent, keep, j = node.parent
        H = parent.H
        Hj = H[keep, j]
        H = H[keep[:, None], keep] - Hj[:, None] * (Hj / H[j, j])
        steps = 1 if parent.exact else parent.steps + 1
        vif_sum = float(H.diagonal() @ self.gram_diag[node.cols])
        k = node.cols.size
        relative = gram_rss_error(node.rss, stats.yty, vif_sum, stats.p, k, steps)
        if relative > _USABLE:
            return _solve_support(stats, node.cols)
        error = node.rss_error + relative * node.rss
        return _Factor(H, node.rss, error, False, steps, node.rss_error)

    def expand(self, node: _Node) -> None:
        self.nodes += 1
        factor = self.factor(node)
        if factor is None:
            return self.expand_dependent(node)
        stats, H, rss = self.prob.stats, factor.H, factor.rss
        self.prob.offer(
            node.cols, float(self.prob.objective(rss - factor.rss_error, node.cols.size))
        )
        free = np.arange(node.n_fixed, node.cols.size)
        if not free.size:
            return None
        beta = H @ stats.xty[node.cols]
        h = H.diagonal()
        delta = beta**2 / h
        g_diag = self.gram_diag[node.cols]
        vif_sum = float(h @ g_diag)
        inc_error = _increment_error(factor, stats, vif_sum)
        b2 = beta[free] ** 2 * g_diag[free]
        if self.size_bound(node, factor, delta[free], inc_error, b2) > self.prob.limit():
            return None
        order = free[np.lexsort((node.cols[free], -delta[free]))]  # most important first
        if factor.exact:
            base = factor.rss_error + inc_error(delta[order])
            error = base
        else:  # the children's own Gram bound, one downdate further
            base = np.full(order.size, factor.base_error)
            gram = factor.rss_error - factor.base_error
            error = base + gram * (factor.steps + 1) / factor.steps
        self.branch(node, order, factor, rss + delta[order], base, error)
        return None

    def size_bound(self, node: _Node, factor: _Factor, delta, inc_error, b2) -> float:
        """Lower bound over the subtree, minimised over the number d of free columns dropped;
        every term less its rounding error."""
        sizes = node.cols.size - np.arange(delta.size + 1)
        ok = sizes <= self.prob.max_size
        if not ok.any():
            return math.inf
        ordered = np.sort(delta)
        by_max = np.concatenate([[0.0], np.maximum(ordered - inc_error(ordered), 0.0)])
        spread = 4.0 * float(inc_error(np.array([self.prob.stats.yty]))[0]) / self.prob.stats.yty
        sums = np.concatenate([[0.0], np.cumsum(np.sort(b2))]) * max(1.0 - spread, 0.0)
        rss_d = factor.rss - factor.rss_error + np.maximum(by_max, node.eig_min * sums)
        return float(np.min(self.prob.objective(np.maximum(rss_d[ok], 0.0), sizes[ok])))

    def range_min_penalty(self, lo: np.ndarray, hi: int) -> np.ndarray:
        """``min(pen[lo_i : hi + 1])`` for each entry of ``lo`` (``inf`` if empty)."""
        hi = min(hi, self.prob.max_size)
        if hi < 0:
            return np.full(lo.shape, np.inf)
        suffix = np.minimum.accumulate(self.prob.pen[: hi + 1][::-1])[::-1]
        return np.where(lo <= hi, suffix[np.minimum(lo, hi)], np.inf)

    def branch(self, node, order, factor: _Factor, child_rss, child_base, child_error) -> None:
        """Child i drops order[i] and forces in order[:i].  The most important is pushed first,
        so the small subtrees, which drop unimportant columns, are searched first.  A child
        carries the error its downdates inherit (``child_base``); ``child_error`` bounds the
        error of ``child_rss`` itself."""
        q = node.cols.size
        lo = node.n_fixed + np.arange(order.size)
        lower_rss = np.maximum(child_rss - child_error, 0.0)
        bounds = _neg_loglik(lower_rss, self.prob.stats) + self.range_min_penalty(lo, q - 1)
        i_best = int(np.argmin(child_rss))
        head = np.arange(node.n_fixed)
        for i in np.flatnonzero(bounds <= self.prob.limit()):
            keep = np.concatenate([head, order[:i], order[i + 1 :]])
            if i == i_best:
                lower = float(self.prob.objective(lower_rss[i], q - 1))
                self.prob.offer(node.cols[keep], lower)
            child = (node.cols[keep], lo[i], child_rss[i], child_base[i], bounds[i], node.eig_min)
            self.stack.append(_Node(*child, parent=(factor, keep, order[i])))

    def expand_dependent(self, node: _Node) -> None:
        """Dependent columns: children from scratch, bounded by the parent's RSS bound."""
        lower_rss = max(node.rss - node.rss_error, 0.0)
        for i in range(node.n_fixed, node.cols.size):
            cols = np.delete(node.cols, i)
            bound = _neg_loglik(lower_rss, self.prob.stats)
            bound += self.range_min_penalty(np.array([i]), cols.size)[0]
            if bound <= self.prob.limit():
                eig = _min_eig(self.prob.stats, cols)
                self.stack.append(_Node(cols, i, node.rss, node.rss_error, bound, eig))

    def run(self, root: _Node, deadline: float, node_limit: float) -> float:
        """Search; returns the proven gap (0 when the tree is exhausted)."""
        self.stack.append(root)
        while self.stack:
            if time.perf_counter() > deadline or self.nodes >= node_limit:
                return self.prob.limit() - min(node.bound for node in self.stack)
            node = self.stack.pop()
            if node.bound <= self.prob.limit():
                self.expand(node)
        return 0.0


def _root(prob: _Problem) -> _Node:
    """All columns, most strongly correlated with y first; the RSS of their span (by a
    least-squares solve on the square root) and its error bound."""
    stats = prob.stats
    corr = stats.xty**2 / np.maximum(np.diag(stats.gram), 1e-300)
    cols = np.lexsort((np.arange(prob.p), -corr)).astype(np.intp)
    A = stats.root[:, :-1]
    norms = np.sqrt(np.einsum("ij,ij->j", A, A))
    norms = np.where(norms > 0, norms, 1.0)
    coef = np.linalg.lstsq(A / norms, stats.root[:, -1], rcond=1e-13)[0]
    resid = stats.root[:, -1] - (A / norms) @ coef
    rss = float(resid @ resid)
    b = coef / math.sqrt(stats.yty)
    error = qr_rss_error(rss, stats.yty, b, stats.n + A.shape[0], prob.p)
    return _Node(cols, 0, rss, error, -math.inf, _min_eig(stats, cols))


def certified_best_subset(
    stats: GaussianStats,
    penalty: str | float = "bic",
    *,
    incumbent: np.ndarray | None = None,
    max_size: int | None = None,
    time_limit: float | None = None,
    node_limit: int | None = None,
    enumeration_limit: int = ENUMERATION_LIMIT,
) -> SubsetSearchResult:
    r"""The support minimising :math:`-\ell(S) + \mathrm{pen}(|S|)`, with a certificate.

    1. Incumbent: greedy forward selection and add/drop/swap local search, also from
       ``incumbent`` if given (:func:`heuristic_best_subset`).
    2. If at most ``enumeration_limit`` supports have an admissible size (e.g. p >= n, where
       :func:`admissible_max_size` is small), all are enumerated.
    3. Otherwise a depth-first leaps-and-bounds search over the drop-column tree (module
       docstring); the free columns of a node are ordered by decreasing drop increment
       :math:`\delta_j = \hat\beta_j^2 / H_{jj}`, so the large subtrees, which drop important
       columns, are pruned early.

    **Rounding.** The fast formulas (Gram blocks, downdated inverses) lose accuracy as the
    square of the condition number; every value they produce enters the search less its
    rounding-error bound (:mod:`l0bayes.linear_model.stats`), and every support they cannot
    rule out is re-scored by a QR of the square root of the statistics, which is what the
    answer's ``objective`` is.  Two supports of different column spaces whose exact objectives
    lie within their error bounds cannot be told apart in float64: they are returned in
    ``ties`` and the answer is not certified.

    Only supports of linearly independent columns (every VIF below ``VIF_LIMIT``) and of size
    at most ``max_size`` are candidates: a dependent support has the same RSS and rank as an
    independent subset, which is smaller and so preferred.  The result is deterministic.
    Supports of the same column space (e.g. duplicated columns) are one model: the first
    found is returned.

    :param stats: sufficient statistics (:class:`GaussianStats`).
    :param penalty: ``"aic"``, ``"bic"``, ``"aicc"``, ``"ebic"`` or λ >= 0.
    :param incumbent: optional boolean mask of a good support (e.g. from a relaxation).
    :param max_size: largest support size; default :func:`admissible_max_size`.
    :param time_limit: seconds after which the search stops with the best support found.
    :param node_limit: number of tree nodes after which the search stops.
    :param enumeration_limit: enumerate instead of branching when there are at most this many
        admissible supports (0 forces the branch and bound).
    :returns: a :class:`SubsetSearchResult`; ``gap`` bounds the sub-optimality when not
        ``optimal``.
    """
    t0 = time.perf_counter()
    prob = _Problem(stats, penalty, max_size)
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ValueError(f"time_limit must be a number > 0 or None, got {time_limit!r}")
    nodes = _polish(prob, incumbent)
    if _n_supports(prob.p, prob.max_size) <= enumeration_limit:
        count = _enumerate(prob, range(prob.max_size + 1))
        return _result(prob, 0.0, nodes + count, t0)
    search = _BranchAndBound(prob)
    deadline = t0 + time_limit if time_limit is not None else math.inf
    gap = search.run(_root(prob), deadline, node_limit if node_limit is not None else math.inf)
    return _result(prob, gap, nodes + search.nodes, t0)


__all__ = [
    "ENUMERATION_LIMIT",
    "MIN_RESIDUAL_DF",
    "RSS_FLOOR",
    "VIF_LIMIT",
    "GaussianCriteria",
    "GaussianStats",
    "SubsetSearchResult",
    "admissible_max_size",
    "certified_best_subset",
    "exhaustive_best_subset",
    "gaussian_criteria",
    "heuristic_best_subset",
    "log_comb",
    "penalty_values",
    "subset_objective",
]
